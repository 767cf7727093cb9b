// tally: a small Node.js server that counts visits (a dockyard adoption test).
//   GET /       a page with the greeting, the version and the visit count
//   GET /ping   the health route: "pong"
//   GET /whoami the uid the server runs as (the image runs it as the unprivileged user `node`)
'use strict';
const http = require('node:http');
const os = require('node:os');

const TITLE = 'Tally';

function createServer(env = process.env) {
  let visits = 0;
  return http.createServer((req, res) => {
    const send = (status, type, body) => {
      res.writeHead(status, { 'Content-Type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return send(405, 'text/plain', 'GET only\n');
    if (req.url === '/ping') return send(200, 'text/plain', 'pong\n');
    if (req.url === '/whoami') return send(200, 'application/json', JSON.stringify({ uid: process.getuid(), user: os.userInfo().username }));
    if (req.url === '/') {
      visits += 1;
      const version = env.DOCKYARD_VERSION || env.TALLY_VERSION || 'dev';
      return send(200, 'text/html', `<!doctype html><title>${TITLE}</title><h1>${TITLE}</h1>` +
        `<p>${env.TALLY_GREETING || 'hello'}</p><p>version ${version}</p><p>visits ${visits}</p>\n`);
    }
    return send(404, 'text/plain', 'not found\n');
  });
}

module.exports = { createServer, TITLE };

if (require.main === module) {
  const port = Number(process.env.PORT || 3000);
  const server = createServer().listen(port, '0.0.0.0', () => console.log(`tally listening on ${port}`));
  // `docker stop` sends SIGTERM: finish what is in flight, then exit.
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}

'use strict';
const test = require('node:test');
const assert = require('node:assert');
const { createServer } = require('../src/server');

function get(server, path) {
  return new Promise((resolve, reject) => {
    const { port } = server.address();
    require('node:http').get({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.on('data', (chunk) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', reject);
  });
}

test('ping answers pong and the page counts visits', async () => {
  const server = createServer({ TALLY_GREETING: 'hi there' }).listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  try {
    assert.deepStrictEqual(await get(server, '/ping'), { status: 200, body: 'pong\n' });
    await get(server, '/');
    const page = await get(server, '/');
    assert.match(page.body, /hi there/);
    assert.match(page.body, /visits 2/);
  } finally {
    server.close();
  }
});

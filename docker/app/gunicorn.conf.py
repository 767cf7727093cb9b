"""gunicorn settings for the sample app (installed in the image as /etc/gunicorn/gunicorn.conf.py).

Every value can be overridden from the environment (GUNICORN_*), e.g. in environments/<env>/.env.
"""
import os


def _int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = _int("GUNICORN_WORKERS", 2)
threads = _int("GUNICORN_THREADS", 1)
timeout = _int("GUNICORN_TIMEOUT", 60)
# On SIGTERM (docker stop) workers get this long to finish in-flight requests.
# Keep it below the container's stop timeout (docker's default is 10 s).
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 8)
keepalive = _int("GUNICORN_KEEPALIVE", 5)

# Logs to the container's stdout/stderr.
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")
access_log_format = '%({x-forwarded-for}i)s %(h)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'

# nginx in front of us sets X-Forwarded-*; only containers on our network can reach us.
forwarded_allow_ips = os.environ.get("GUNICORN_FORWARDED_ALLOW_IPS", "*")
# Heartbeat files in memory, not on the (possibly slow) container filesystem.
worker_tmp_dir = "/dev/shm"

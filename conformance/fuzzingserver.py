# wstest's fuzzing server, listening on 127.0.0.1 only (wstest itself binds
# every interface). Arguments as for wstest; run with the virtualenv's python.
import sys

from autobahn.twisted import websocket
from autobahntestsuite import fuzzing, wstest

_listen = websocket.listenWS


def listen_loopback(factory, contextFactory=None, backlog=50, interface=''):
    return _listen(factory, contextFactory, backlog, '127.0.0.1')


fuzzing.listenWS = listen_loopback

if __name__ == '__main__':
    sys.exit(wstest.run())

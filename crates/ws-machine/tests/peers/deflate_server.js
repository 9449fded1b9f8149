// An echo server with permessage-deflate (every message compressed:
// threshold 0), for the compression tests. Listens on 127.0.0.1, on the
// port given as the first argument (0: any), and prints `listening PORT`
// once it listens; the second argument is `takeover` (the default) or
// `none` (no context takeover either way, required of the client too).
// Echoes every message with its kind; answers the text `extensions?` with
// the Sec-WebSocket-Extensions header it answered the upgrade with, and
// `bomb:N` with N zero bytes (compressed about a thousand to one), after
// which it prints `closed CODE` once the client closes. Runs until its
// stdin closes.
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const takeover = (process.argv[3] || 'takeover') === 'takeover';
const server = new WebSocketServer({
  host: '127.0.0.1',
  port,
  maxPayload: 64 * 1024 * 1024,
  perMessageDeflate: {
    threshold: 0,
    serverNoContextTakeover: !takeover,
    clientNoContextTakeover: !takeover,
  },
});

let answered = '';
server.on('headers', (headers) => {
  const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
  answered = line ? line.slice(line.indexOf(':') + 1).trim() : '';
});

server.on('listening', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

server.on('connection', (socket) => {
  const agreed = answered;
  socket.on('message', (data, isBinary) => {
    const text = isBinary ? '' : data.toString();
    if (text === 'extensions?') {
      socket.send(agreed);
    } else if (text.startsWith('bomb:')) {
      socket.on('close', (code) => process.stdout.write(`closed ${code}\n`));
      socket.send(Buffer.alloc(Number(text.slice(5))));
    } else {
      socket.send(data, { binary: isBinary });
    }
  });
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

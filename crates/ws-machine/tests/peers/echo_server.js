// An echo server on Node's `ws`: every message comes back as it came (text
// as text, binary as binary); control pings are answered with pongs that
// echo their payload. Listens on 127.0.0.1, on the port given as the first
// argument (0: any), and prints `listening PORT` once it listens. Runs until
// its stdin closes.
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const server = new WebSocketServer({ host: '127.0.0.1', port, maxPayload: 16 * 1024 * 1024 });

server.on('listening', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => socket.send(data, { binary: isBinary }));
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

// A WebSocket server like many exchanges': it ignores control pings (no
// automatic pong), answers the application heartbeat {"op":"ping"} with
// {"op":"pong"}, and echoes everything else. Listens on 127.0.0.1, on the
// port given as the first argument (0: any), and prints `listening PORT`
// once it listens. Runs until its stdin closes.
const { WebSocketServer } = require('ws');

const port = Number(process.argv[2] || 0);
const server = new WebSocketServer({ host: '127.0.0.1', port, autoPong: false });

server.on('listening', () => {
  process.stdout.write(`listening ${server.address().port}\n`);
});

server.on('connection', (socket) => {
  socket.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === '{"op":"ping"}') {
      socket.send('{"op":"pong"}');
    } else {
      socket.send(data, { binary: isBinary });
    }
  });
});

process.stdin.resume();
process.stdin.on('end', () => process.exit(0));

'use strict';
// Comparison peer: a room broadcast server on Node.js + ws 8.x, written the way ws users write one.
//
// Rooms are Sets of sockets. Frames are binary; the envelope (all integers unsigned, room names UTF-8, at most 255
// bytes) is:
//   client -> server   JOIN   [0x01][roomLen][room]             the server answers JOINED once the socket is in the room
//                      PUB    [0x03][roomLen][room][payload...]  broadcast payload to every member (sender included)
//   server -> client   JOINED [0x02][roomLen][room]
//                      MSG    [0x04][roomLen][room][payload...]
// A broadcast is serialized once and the same Buffer is passed to ws.send for every member (server frames are not
// masked, so ws writes the one buffer after a per-socket frame header).
//
// Auth: when PEER_JWT_KEY (an HS256 key, base64, the gateway's Gateway:Auth:SigningKey format) is set, the upgrade
// must carry a valid JWT as ?access_token=... or "Authorization: Bearer ...", checked before the handshake completes
// (the ws README's "client authentication" pattern: noServer + the http server's 'upgrade' event).
//
// Deliberately not done: permessage-deflate (off by default on ws 8 servers), ping/pong heartbeats, backpressure on
// slow sockets (ws buffers without bound unless the app checks bufferedAmount; most apps do not).

const http = require('http');
const { WebSocketServer } = require('ws');
const jwt = require('jsonwebtoken');

const OP_JOIN = 0x01;
const OP_JOINED = 0x02;
const OP_PUB = 0x03;
const OP_MSG = 0x04;

const port = Number(process.argv[2] || process.env.PORT);
if (!Number.isInteger(port) || port <= 0 || port > 65535) {
  console.error('usage: node server.js <port>');
  process.exit(2);
}
const host = process.env.HOST || '127.0.0.1';
const jwtKey = process.env.PEER_JWT_KEY ? Buffer.from(process.env.PEER_JWT_KEY, 'base64') : null;

/** @type {Map<string, Set<import('ws').WebSocket>>} */
const rooms = new Map();

function authenticate(req) {
  if (!jwtKey) return true;
  const url = new URL(req.url, 'http://localhost');
  let token = url.searchParams.get('access_token');
  const header = req.headers.authorization;
  if (!token && header && header.startsWith('Bearer ')) token = header.slice(7);
  if (!token) return false;
  try {
    const claims = jwt.verify(token, jwtKey, { algorithms: ['HS256'], clockTolerance: 30 });
    return typeof claims.sub === 'string' && claims.sub.length > 0;
  } catch {
    return false;
  }
}

function join(ws, room) {
  let members = rooms.get(room);
  if (!members) {
    members = new Set();
    rooms.set(room, members);
  }
  members.add(ws);
  ws.rooms.add(room);
}

function leaveAll(ws) {
  for (const room of ws.rooms) {
    const members = rooms.get(room);
    if (!members) continue;
    members.delete(ws);
    if (members.size === 0) rooms.delete(room);
  }
  ws.rooms.clear();
}

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain' });
  res.end('WebSocket only\n');
});
const wss = new WebSocketServer({ noServer: true });

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => socket.destroy());
  if (!authenticate(req)) {
    socket.write('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    socket.destroy();
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

wss.on('connection', (ws) => {
  ws.rooms = new Set();
  ws.on('error', () => {});
  ws.on('close', () => leaveAll(ws));
  ws.on('message', (data, isBinary) => {
    // ws hands a single Buffer per message (binaryType 'nodebuffer', the default).
    if (!isBinary || data.length < 2) {
      ws.close(1003, 'binary envelope expected');
      return;
    }
    const op = data[0];
    const roomEnd = 2 + data[1];
    if (data[1] === 0 || data.length < roomEnd) {
      ws.close(1008, 'bad room');
      return;
    }
    const room = data.toString('utf8', 2, roomEnd);
    if (op === OP_JOIN) {
      join(ws, room);
      const ack = Buffer.from(data.subarray(0, roomEnd));
      ack[0] = OP_JOINED;
      ws.send(ack);
    } else if (op === OP_PUB) {
      const members = rooms.get(room);
      if (!members) return;
      // Serialize once: MSG has PUB's layout, so copy the frame and change the op byte.
      const out = Buffer.allocUnsafe(data.length);
      data.copy(out);
      out[0] = OP_MSG;
      for (const member of members) {
        if (member.readyState === member.OPEN) member.send(out);
      }
    } else {
      ws.close(1008, 'unknown op');
    }
  });
});

server.listen(port, host, () => {
  process.stdout.write('READY\n');
});

function shutdown() {
  for (const ws of wss.clients) ws.terminate();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/** A request as the hostile server read it: request line and lower-cased headers. */
export interface RawRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
}

/** Answers one request by writing raw bytes to the socket (or not at all). */
export type RawHandler = (req: RawRequest, socket: Socket) => void;

export interface HostileServer {
  /** `127.0.0.1:PORT`, as in image references. */
  readonly host: string;
  /** Every request line seen, `GET /v2/`. */
  readonly seen: string[];
  /** Sockets still open (a client that gave up closes its side). */
  openSockets(): number;
  close(): Promise<void>;
}

/**
 * An HTTP/1.1 server on 127.0.0.1 built on raw TCP, so a test can misbehave in ways node:http
 * forbids: never answer, stall mid-body, lie about Content-Length, stream forever. Each
 * connection serves one request (the handler decides what, if anything, is written).
 */
export async function startHostileServer(handle: RawHandler): Promise<HostileServer> {
  const sockets = new Set<Socket>();
  const seen: string[] = [];
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined); // the client hanging up is expected
    let head = '';
    const onData = (b: Buffer) => {
      // A TLS ClientHello (clients try https first): hang up at once, as a plain HTTP server
      // effectively does, rather than let the handshake time out.
      if (head === '' && b[0] === 0x16) return void socket.destroy();
      head += b.toString('latin1');
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      socket.off('data', onData);
      const [line = '', ...rest] = head.slice(0, end).split('\r\n');
      const [method = '', path = ''] = line.split(' ');
      const headers: Record<string, string> = {};
      for (const h of rest) {
        const i = h.indexOf(':');
        if (i > 0) headers[h.slice(0, i).trim().toLowerCase()] = h.slice(i + 1).trim();
      }
      seen.push(`${method} ${path}`);
      handle({ method, path, headers }, socket);
    };
    socket.on('data', onData);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    openSockets: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Writes a complete response and closes the connection. */
export function respond(socket: Socket, status: number, headers: Readonly<Record<string, string>>, body: Buffer | string = ''): void {
  const b = Buffer.from(body);
  socket.end(Buffer.concat([Buffer.from(statusHead(status, { 'content-length': String(b.length), ...headers })), b]));
}

/** The status line and headers, with `connection: close`. */
export function statusHead(status: number, headers: Readonly<Record<string, string>>): string {
  const lines = [`HTTP/1.1 ${status} X`, 'connection: close', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)];
  return lines.join('\r\n') + '\r\n\r\n';
}

/**
 * Writes `chunk` again and again, as fast as the client reads, until the client hangs up:
 * an endless body (framed by the caller's headers: chunked, or a lying Content-Length).
 */
export function streamForever(socket: Socket, chunk: Buffer, opts: { chunked: boolean }): void {
  const frame = opts.chunked ? Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]) : chunk;
  const pump = () => {
    while (!socket.destroyed && socket.writable) {
      if (!socket.write(frame)) {
        socket.once('drain', pump);
        return;
      }
    }
  };
  pump();
}

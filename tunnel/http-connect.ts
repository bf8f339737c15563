/**
 * The server side of an HTTP CONNECT request (RFC 9110 §9.3.6): an incremental parser of the
 * request's header section, bounded in size, and the encoders of the proxy's answers. Bytes
 * only, no I/O.
 */

/** Largest header section accepted (request line and headers); larger gets 431. */
export const DEFAULT_MAX_CONNECT_HEADER_BYTES = 8 * 1024;

/** What the parser made of the bytes so far. */
export type HttpConnectEvent =
  /** A complete CONNECT request for `host:port` (host as written; brackets removed from IPv6). */
  | { type: 'http.connect'; host: string; port: number }
  /** Not a CONNECT request the proxy can serve: answer with `status` and `message`, then close. */
  | { type: 'http.invalid'; status: HttpRefusalStatus; message: string };

/** The statuses the proxy answers with. */
export type HttpRefusalStatus = 400 | 403 | 405 | 408 | 431 | 502 | 504 | 505;

const STATUS_TEXT: Record<HttpRefusalStatus | 200, string> = {
  200: 'Connection Established',
  400: 'Bad Request',
  403: 'Forbidden',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  431: 'Request Header Fields Too Large',
  502: 'Bad Gateway',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

/** RFC 9110 §5.6.2 token: what a method may be made of. */
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^(\S+) (\S+) HTTP\/(\d)\.(\d)$/;
/** authority-form (RFC 9112 §3.2.3): host ":" port, IPv6 in brackets. */
const AUTHORITY = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:[\]/@]+)):(\d{1,5})$/;

/** Options of {@link HttpConnectParser}. */
export interface HttpConnectParserOptions {
  /** @default DEFAULT_MAX_CONNECT_HEADER_BYTES (8 KiB) */
  maxHeaderBytes?: number;
}

/**
 * Collects a request's header section until its empty line, then reports one event. The request
 * line is judged as soon as it is complete, so a client that is not speaking HTTP, or asks for
 * another method, hears why at once rather than after the header limit or the timeout.
 */
export class HttpConnectParser {
  readonly #maxHeaderBytes: number;
  #buffered: Buffer = Buffer.alloc(0);
  #lineChecked = false;
  #done = false;
  #connected = false;
  #rest: Buffer = Buffer.alloc(0);

  constructor(options: HttpConnectParserOptions = {}) {
    this.#maxHeaderBytes = options.maxHeaderBytes ?? DEFAULT_MAX_CONNECT_HEADER_BYTES;
  }

  /** Parses `chunk` with what came before; returns the event it completes, if any. */
  write(chunk: Buffer): HttpConnectEvent | undefined {
    if (this.#done) {
      // After a CONNECT, later bytes are the program's first data too; after a refusal, dropped.
      if (this.#connected) this.#rest = Buffer.concat([this.#rest, chunk]);
      return undefined;
    }
    // Search only where the end could be: the last 3 bytes already held plus the new chunk.
    const from = Math.max(0, this.#buffered.length - 3);
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const b = this.#buffered;
    if (!this.#lineChecked) {
      const newline = b.indexOf(0x0a);
      const line = (newline < 0 ? b : b.subarray(0, newline)).toString('latin1').replace(/\r$/, '');
      const firstWord = line.split(' ', 1)[0];
      // Known not to be HTTP already: the method must be a token (and at most 16 bytes is plenty).
      if (firstWord.length > 16 || (firstWord.length > 0 && !TOKEN.test(firstWord)) || b[0] === 0x20) {
        return this.#finish({ type: 'http.invalid', status: 400, message: 'not an HTTP request (this port speaks SOCKS5 and HTTP CONNECT)' });
      }
      if (newline >= 0) {
        this.#lineChecked = true;
        const refused = judgeRequestLine(line);
        if (refused) return this.#finish(refused);
      }
    }
    const end = headerEnd(b, from);
    if (end < 0 ? b.length > this.#maxHeaderBytes : end > this.#maxHeaderBytes) {
      return this.#finish({ type: 'http.invalid', status: 431, message: `the request's header section is over ${this.#maxHeaderBytes} bytes` });
    }
    if (end < 0) return undefined;
    this.#rest = b.subarray(end);
    this.#connected = true;
    const line = b.subarray(0, b.indexOf(0x0a)).toString('latin1').replace(/\r$/, '');
    const m = AUTHORITY.exec((REQUEST_LINE.exec(line) as RegExpExecArray)[2]) as RegExpExecArray;
    return this.#finish({ type: 'http.connect', host: m[1] ?? m[2], port: Number(m[3]) });
  }

  /** Bytes received after the header section of a CONNECT (the program's first data), in this and later writes. */
  rest(): Buffer {
    return this.#rest;
  }

  #finish(event: HttpConnectEvent): HttpConnectEvent {
    this.#done = true;
    this.#buffered = Buffer.alloc(0);
    return event;
  }
}

/** A refusal for a request line the proxy will not serve, or undefined for a good CONNECT line. */
function judgeRequestLine(line: string): HttpConnectEvent | undefined {
  const m = REQUEST_LINE.exec(line);
  if (m === null) return { type: 'http.invalid', status: 400, message: `not an HTTP request line: ${JSON.stringify(line.slice(0, 80))}` };
  const [, method, target, major] = m;
  if (major !== '1') return { type: 'http.invalid', status: 505, message: `HTTP/${m[3]}.${m[4]} is not supported; CONNECT over HTTP/1.x` };
  if (method !== 'CONNECT') {
    return {
      type: 'http.invalid',
      status: 405,
      message:
        `${method} is not supported: this proxy only opens tunnels (CONNECT host:port, or SOCKS5 on the same port); ` +
        'with curl use -p (--proxytunnel) with -x, or --socks5-hostname',
    };
  }
  const authority = AUTHORITY.exec(target);
  if (authority === null) return { type: 'http.invalid', status: 400, message: `CONNECT needs host:port, got ${JSON.stringify(target.slice(0, 80))}` };
  const port = Number(authority[3]);
  if (port < 1 || port > 65535) return { type: 'http.invalid', status: 400, message: `port ${authority[3]} is not 1..65535` };
  return undefined;
}

/** Index just past the empty line that ends the header section, or -1. Bare LF is tolerated (RFC 9112 §2.2). */
function headerEnd(b: Buffer, from: number): number {
  for (let i = b.indexOf(0x0a, from); i >= 0; i = b.indexOf(0x0a, i + 1)) {
    if (b[i + 1] === 0x0a) return i + 2;
    if (b[i + 1] === 0x0d && b[i + 2] === 0x0a) return i + 3;
  }
  return -1;
}

/** The answer that opens the tunnel: from its last byte on, the connection carries the target's bytes. */
export function encodeEstablished(): Buffer {
  return Buffer.from(`HTTP/1.1 200 ${STATUS_TEXT[200]}\r\n\r\n`, 'latin1');
}

/** A refusal with a one-line reason as its body; the proxy closes after it. */
export function encodeRefusal(status: HttpRefusalStatus, reason: string): Buffer {
  const body = `${reason.replace(/[\r\n]+/g, ' ')}\n`;
  const extra = status === 405 ? 'Allow: CONNECT\r\n' : '';
  return Buffer.from(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status]}\r\n` +
      extra +
      'Content-Type: text/plain; charset=utf-8\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
    'utf8',
  );
}

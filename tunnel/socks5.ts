/**
 * The server side of the SOCKS5 handshake (RFC 1928): an incremental parser of the client's
 * greeting and request, and the encoders of the server's answers. Bytes only, no I/O: the proxy
 * feeds it what the socket reads, in chunks of any size, and writes what it is told to.
 *
 * Size is bounded by the protocol itself: a greeting is at most 2 + 255 bytes (§3) and a
 * request at most 4 + 1 + 255 + 2 (§4), so the parser never holds more than one of each plus
 * the chunk that finished the request.
 */

export const SOCKS5_VERSION = 0x05;

/** Authentication methods (RFC 1928 §3). Only NO AUTHENTICATION REQUIRED is offered. */
export const SocksMethod = {
  NoAuth: 0x00,
  NoAcceptable: 0xff,
} as const;

/** Request commands (RFC 1928 §4). */
export const SocksCommand = {
  Connect: 0x01,
  Bind: 0x02,
  UdpAssociate: 0x03,
} as const;

/** Address types (RFC 1928 §5). */
export const SocksAddressType = {
  Ipv4: 0x01,
  DomainName: 0x03,
  Ipv6: 0x04,
} as const;

/** The REP field of a reply (RFC 1928 §6). */
export const SocksReply = {
  Succeeded: 0x00,
  GeneralFailure: 0x01,
  NotAllowed: 0x02,
  NetworkUnreachable: 0x03,
  HostUnreachable: 0x04,
  ConnectionRefused: 0x05,
  TtlExpired: 0x06,
  CommandNotSupported: 0x07,
  AddressTypeNotSupported: 0x08,
} as const;

/** The DST.ADDR of a request, as text: dotted quad, the name as sent, or a full IPv6 address. */
export type SocksAddress =
  | { type: 'ipv4'; host: string }
  | { type: 'domain'; host: string }
  | { type: 'ipv6'; host: string };

/** What the parser made of the bytes so far. */
export type Socks5Event =
  /** The method-selection message (§3): the methods the client offers. */
  | { type: 'socks.greeting'; methods: readonly number[] }
  /** A complete request (§4). `command` is any byte; the caller decides what it supports. */
  | { type: 'socks.request'; command: number; address: SocksAddress; port: number }
  /**
   * Bytes that are not SOCKS5. `reply` is the REP to answer with when a request is under way
   * (§6), undefined in the greeting, where there is no reply format for it: the proxy closes.
   */
  | { type: 'socks.invalid'; reply: number | undefined; message: string };

type State = 'greeting' | 'request' | 'done' | 'failed';

/**
 * Turns the client's bytes into {@link Socks5Event}s. Feed it with `write()`; it reports the
 * greeting, then the request, then stops. Bytes after the request (a client may send its first
 * data without waiting for the reply) are kept for the connection, in `rest()`.
 *
 * @example
 * ```ts
 * const parser = new Socks5Parser();
 * for (const event of parser.write(chunk)) { … }
 * ```
 */
export class Socks5Parser {
  #state: State = 'greeting';
  #buffered: Buffer = Buffer.alloc(0);

  /** Where the parser is: waiting for the greeting, the request, finished, or failed. */
  get state(): State {
    return this.#state;
  }

  /** Parses `chunk` with what came before; returns the events it completes, in order. */
  write(chunk: Buffer): Socks5Event[] {
    if (this.#state === 'failed') return [];
    this.#buffered = this.#buffered.length === 0 ? chunk : Buffer.concat([this.#buffered, chunk]);
    const events: Socks5Event[] = [];
    for (;;) {
      const event = this.#state === 'greeting' ? this.#greeting() : this.#state === 'request' ? this.#request() : undefined;
      if (event === undefined) break;
      events.push(event);
      if (event.type === 'socks.invalid') {
        this.#state = 'failed';
        this.#buffered = Buffer.alloc(0);
        break;
      }
    }
    return events;
  }

  /** Bytes received after the request, in this and later writes (empty until the request is complete). */
  rest(): Buffer {
    return this.#state === 'done' ? this.#buffered : Buffer.alloc(0);
  }

  /** §3: VER NMETHODS METHODS… */
  #greeting(): Socks5Event | undefined {
    const b = this.#buffered;
    if (b.length < 1) return undefined;
    if (b[0] !== SOCKS5_VERSION) return invalid(undefined, `not SOCKS5: version byte ${hex(b[0])} in the greeting`);
    if (b.length < 2) return undefined;
    const count = b[1];
    if (count === 0) return invalid(undefined, 'the greeting offers no authentication method');
    if (b.length < 2 + count) return undefined;
    const methods = [...b.subarray(2, 2 + count)];
    this.#consume(2 + count);
    this.#state = 'request';
    return { type: 'socks.greeting', methods };
  }

  /** §4: VER CMD RSV ATYP DST.ADDR DST.PORT. RSV is not checked: it is reserved, not fixed. */
  #request(): Socks5Event | undefined {
    const b = this.#buffered;
    if (b.length < 1) return undefined;
    if (b[0] !== SOCKS5_VERSION) return invalid(SocksReply.GeneralFailure, `not SOCKS5: version byte ${hex(b[0])} in the request`);
    if (b.length < 4) return undefined;
    const command = b[1];
    const type = b[3];
    let address: SocksAddress;
    let end: number;
    switch (type) {
      case SocksAddressType.Ipv4:
        end = 4 + 4;
        if (b.length < end + 2) return undefined;
        address = { type: 'ipv4', host: [...b.subarray(4, end)].join('.') };
        break;
      case SocksAddressType.DomainName: {
        if (b.length < 5) return undefined;
        end = 5 + b[4];
        if (b.length < end + 2) return undefined;
        address = { type: 'domain', host: b.subarray(5, end).toString('latin1') };
        break;
      }
      case SocksAddressType.Ipv6: {
        end = 4 + 16;
        if (b.length < end + 2) return undefined;
        const groups: string[] = [];
        for (let i = 4; i < end; i += 2) groups.push(b.readUInt16BE(i).toString(16));
        address = { type: 'ipv6', host: groups.join(':') };
        break;
      }
      default:
        // The address's length depends on its type: the rest of the request cannot be read.
        return invalid(SocksReply.AddressTypeNotSupported, `unknown address type ${hex(type)}`);
    }
    const port = b.readUInt16BE(end);
    this.#consume(end + 2);
    this.#state = 'done';
    return { type: 'socks.request', command, address, port };
  }

  #consume(bytes: number): void {
    this.#buffered = this.#buffered.subarray(bytes);
  }
}

function invalid(reply: number | undefined, message: string): Socks5Event {
  return { type: 'socks.invalid', reply, message };
}

function hex(byte: number): string {
  return `0x${byte.toString(16).padStart(2, '0')}`;
}

/** §3: the server's METHOD selection; {@link SocksMethod.NoAcceptable} tells the client to close. */
export function encodeMethodSelection(method: number): Buffer {
  return Buffer.from([SOCKS5_VERSION, method]);
}

/**
 * §6: a reply. BND.ADDR/BND.PORT name the address the connection leaves from; failures carry
 * 0.0.0.0:0, as they bind nothing.
 */
export function encodeReply(reply: number, bound: { address: string; port: number } = { address: '0.0.0.0', port: 0 }): Buffer {
  const out = Buffer.alloc(10);
  out[0] = SOCKS5_VERSION;
  out[1] = reply;
  out[2] = 0x00;
  out[3] = SocksAddressType.Ipv4;
  const octets = bound.address.split('.').map(Number);
  for (let i = 0; i < 4; i++) out[4 + i] = octets[i] ?? 0;
  out.writeUInt16BE(bound.port, 8);
  return out;
}

/**
 * SOCKS4's "request rejected or failed" (CD 91): the answer to a SOCKS4 client, which would
 * misread anything else; it says no in that client's own words before the proxy closes.
 */
export const SOCKS4_REJECTED = Buffer.from([0x00, 0x5b, 0, 0, 0, 0, 0, 0]);

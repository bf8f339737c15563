/**
 * The two languages the proxy's port speaks, told apart by the first byte: 0x05 is SOCKS5
 * (RFC 1928), anything else is taken for HTTP CONNECT. Each dialect turns the parser's events
 * into steps for the proxy (write this, open that, refuse with this) and encodes its answers;
 * the proxy itself never looks at the bytes.
 */
import { formatIpv4, parseIpv4 } from '../protocol/index.ts';
import { TunnelError } from './errors.ts';
import { describe } from './ledger.ts';
import { HttpConnectParser, encodeEstablished, encodeRefusal } from './http-connect.ts';
import { PROXY_REFUSALS, type ProxyRefusal } from './proxy-refusals.ts';
import {
  SOCKS4_REJECTED,
  SOCKS5_VERSION,
  Socks5Parser,
  SocksCommand,
  SocksMethod,
  SocksReply,
  encodeMethodSelection,
  encodeReply,
  type SocksAddress,
} from './socks5.ts';

/** Which dialect a connection spoke, for its log lines. */
export type ProxyProtocol = 'socks5' | 'http-connect' | 'socks4';

/** What the proxy does after feeding a chunk to a dialect. */
export type HandshakeStep =
  /** Write `reply` if any and read on. */
  | { type: 'more'; reply?: Buffer }
  /**
   * The request is complete: write `reply` if any (a SOCKS5 method selection for a greeting that
   * came in the same chunk), open a virtual connection to `address:port`, then answer.
   */
  | { type: 'connect'; address: string; port: number; reply?: Buffer }
  /** Write `reply` if any and close; `error` says why, for the log. */
  | { type: 'refuse'; reply: Buffer | undefined; error: TunnelError };

/** One connection's handshake in one dialect. */
export interface ProxyDialect {
  readonly protocol: ProxyProtocol;
  /** Takes the next bytes the program sent. */
  write(chunk: Buffer): HandshakeStep;
  /** Bytes the program sent after its request, for the connection (once `connect` was returned). */
  rest(): Buffer;
  /** The answer that opens the tunnel; `bound` is the virtual address the connection leaves from. */
  established(bound: { address: string; port: number }): Buffer;
  /** The answer to a refused request. */
  refused(refusal: ProxyRefusal, reason: string): Buffer;
  /** What to say when the request did not arrive in time, if the dialect can say it. */
  timedOut(reason: string): Buffer | undefined;
}

/** Options of {@link dialectFor}. */
export interface DialectOptions {
  /** Largest HTTP header section. @default DEFAULT_MAX_CONNECT_HEADER_BYTES (8 KiB) */
  maxHeaderBytes?: number;
}

/** The dialect of a connection whose first byte is `firstByte`. */
export function dialectFor(firstByte: number, options: DialectOptions = {}): ProxyDialect {
  if (firstByte === SOCKS5_VERSION) return socks5Dialect();
  if (firstByte === 0x04) return socks4Dialect();
  return httpConnectDialect(options);
}

function handshakeError(message: string): TunnelError {
  return new TunnelError('ERR_PROXY_HANDSHAKE', message);
}

function refuse(reply: Buffer | undefined, error: TunnelError): HandshakeStep {
  return { type: 'refuse', reply, error };
}

/**
 * Where a request may go: only dotted IPv4 virtual addresses, also when sent as a name (curl's
 * --socks5-hostname and browsers send every host as DOMAINNAME). Returns the address or the
 * refusal.
 */
function virtualTarget(address: SocksAddress): { address: string } | { refusal: ProxyRefusal; error: TunnelError } {
  if (address.type === 'ipv6') {
    return { refusal: 'address-type-not-supported', error: handshakeError(`IPv6 address ${address.host}: virtual hosts have IPv4 addresses`) };
  }
  const ip = parseIpv4(address.host);
  if (ip === undefined) {
    return {
      refusal: 'host-unreachable',
      error: new TunnelError('ERR_TARGET_UNREACHABLE', `"${address.host.slice(0, 255)}" is not a virtual IPv4 address; AlphaNET hosts are reached by address`),
    };
  }
  // Canonical, so "010.0.0.7" is logged and allow-listed as the 10.0.0.7 it reaches.
  return { address: formatIpv4(ip) };
}

function socks5Dialect(): ProxyDialect {
  const parser = new Socks5Parser();
  const reply = (refusal: ProxyRefusal): Buffer => encodeReply(PROXY_REFUSALS[refusal].socks);
  return {
    protocol: 'socks5',
    write(chunk) {
      // The method selection, when the greeting is in this chunk: it goes out before anything else.
      let answer: Buffer | undefined;
      const send = (bytes: Buffer): Buffer => (answer ? Buffer.concat([answer, bytes]) : bytes);
      for (const event of parser.write(chunk)) {
        switch (event.type) {
          case 'socks.invalid':
            return refuse(event.reply === undefined ? answer : send(encodeReply(event.reply)), handshakeError(event.message));
          case 'socks.greeting':
            // §3: NO AUTHENTICATION REQUIRED or nothing; 0xFF tells the client to close.
            if (!event.methods.includes(SocksMethod.NoAuth)) {
              return refuse(
                encodeMethodSelection(SocksMethod.NoAcceptable),
                handshakeError(`the client offers methods [${event.methods.join(', ')}], not 0 (no authentication)`),
              );
            }
            answer = encodeMethodSelection(SocksMethod.NoAuth);
            break;
          case 'socks.request': {
            if (event.command !== SocksCommand.Connect) {
              const name = event.command === SocksCommand.Bind ? 'BIND' : event.command === SocksCommand.UdpAssociate ? 'UDP ASSOCIATE' : `command ${event.command}`;
              return refuse(send(reply('command-not-supported')), handshakeError(`${name} is not supported; only CONNECT`));
            }
            const target = virtualTarget(event.address);
            if ('refusal' in target) return refuse(send(reply(target.refusal)), target.error);
            return { type: 'connect', address: target.address, port: event.port, ...(answer ? { reply: answer } : {}) };
          }
        }
      }
      return { type: 'more', ...(answer ? { reply: answer } : {}) };
    },
    rest: () => parser.rest(),
    established: (bound) => encodeReply(SocksReply.Succeeded, bound),
    refused: (refusal) => reply(refusal),
    // No reply format fits a request that never came; the client just sees the close.
    timedOut: () => undefined,
  };
}

/** SOCKS4 and 4a are not spoken; a SOCKS4 client is told "rejected" in its own format. */
function socks4Dialect(): ProxyDialect {
  return {
    protocol: 'socks4',
    write: () => refuse(SOCKS4_REJECTED, handshakeError('SOCKS4 is not supported; use SOCKS5 (curl --socks5-hostname)')),
    rest: () => Buffer.alloc(0),
    established: () => SOCKS4_REJECTED,
    refused: () => SOCKS4_REJECTED,
    timedOut: () => undefined,
  };
}

function httpConnectDialect(options: DialectOptions): ProxyDialect {
  const parser = new HttpConnectParser(options);
  return {
    protocol: 'http-connect',
    write(chunk) {
      const event = parser.write(chunk);
      if (event === undefined) return { type: 'more' };
      if (event.type === 'http.invalid') return refuse(encodeRefusal(event.status, event.message), handshakeError(event.message));
      const target = virtualTarget(event.host.includes(':') ? { type: 'ipv6', host: event.host } : { type: 'domain', host: event.host });
      if ('refusal' in target) return refuse(encodeRefusal(PROXY_REFUSALS[target.refusal].http, describe(target.error)), target.error);
      return { type: 'connect', address: target.address, port: event.port };
    },
    rest: () => parser.rest(),
    established: () => encodeEstablished(),
    refused: (refusal, reason) => encodeRefusal(PROXY_REFUSALS[refusal].http, reason),
    timedOut: (reason) => encodeRefusal(408, reason),
  };
}

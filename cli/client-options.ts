/** Flags every client command shares, and the one way commands report errors. */
import net from 'node:net';
import { InvalidArgumentError, Option, type Command } from 'commander';
import { ClientError, DEFAULT_RELAY, DEFAULT_RELAY_PORT, parseRelayTarget } from '../actors/client/index.ts';
import type { RelayAddress, RelayUrl } from '../actors/client/index.ts';
import type { ConnectOptions } from '../actors/client/index.ts';
import { errorParts } from '../actors/describe-error.ts';
import type { Logger } from '../actors/logger.ts';
import { createWebSocketInspection, DEFAULT_INSPECT_URL } from '../observe/inspect.ts';
import { AlphanetError } from '../protocol/errors.ts';
import { parseFingerprint } from '../protocol/fingerprint.ts';
import { createCliLogger } from './cli-logger.ts';

export { DEFAULT_RELAY_PORT };
export type { RelayAddress, RelayUrl };

/** Parsed values of {@link addClientOptions}. */
export interface ClientFlags {
  /** Parsed from `--relay` (with `url` for a WebSocket URL); the default (ALPHANET_RELAY, else DEFAULT_RELAY) is parsed on use. */
  relay: RelayAddress | RelayUrl | string;
  localAddress?: string;
  /** `--inspect [url]`: true when given without a URL. */
  inspect?: string | true;
  /** `--identity FILE`: the key file proved at Hello (created when missing). */
  identity?: string;
  /** `--no-e2e`: false turns end-to-end encryption off (the peer must too). */
  e2e?: boolean;
  /** `--relay-fingerprint`: the only key accepted from the relay (then pinned). */
  relayFingerprint?: string;
  /** `--plaintext`: plain TCP to the relay, no TLS. */
  plaintext?: boolean;
}

function fingerprintArgument(text: string): string {
  const fingerprint = parseFingerprint(text);
  if (fingerprint === undefined) throw new InvalidArgumentError(`"${text}" is not a relay fingerprint: sha256: and 32 hex pairs, as the relay prints it beside "listening on"`);
  return fingerprint;
}

/**
 * `--relay`: `host:port`, a host alone (port 1337), `[ipv6]:port`, `[ipv6]` or a bare IPv6
 * address (`::1`, port 1337) for TCP; or the relay's WebSocket URL, `ws://HOST:PORT/alphanet` or
 * `wss://…` (the path is /alphanet when left out). Takes back exactly what the relay prints
 * after `listening on` or `websocket on`.
 */
export function parseRelayFlag(text: string): RelayAddress | RelayUrl {
  try {
    return parseRelayTarget(text);
  } catch (error) {
    // commander words its own refusal: "option '--relay <host[:port]|url>' argument … is invalid".
    throw new InvalidArgumentError((error as Error).message);
  }
}

function localAddressArgument(text: string): string {
  if (net.isIP(text) === 0) throw new InvalidArgumentError(`"${text}" is not an IP address of this machine`);
  return text;
}

/** Adds --relay, --local-address, --identity, --no-e2e, --relay-fingerprint, --plaintext and --inspect to a client command. */
export function addClientOptions(command: Command): Command {
  return command
    .option(
      '--relay <host[:port]|url>',
      `relay to connect to: HOST[:PORT], [IPV6]:PORT or IPV6 (TCP; port ${DEFAULT_RELAY_PORT} when left out), or its WebSocket URL ws://HOST:PORT/alphanet or wss://… (env ALPHANET_RELAY)`,
      parseRelayFlag as (value: string, previous: RelayAddress | RelayUrl | string) => RelayAddress | RelayUrl | string,
      // An empty ALPHANET_RELAY counts as unset, as in a shell's `ALPHANET_RELAY= alphanet …`.
      process.env.ALPHANET_RELAY || DEFAULT_RELAY,
    )
    .option('--local-address <ip>', 'real source address to connect from (decides the virtual IP)', localAddressArgument)
    .option('--identity <file>', 'identity key file (Ed25519, created mode 0600 when missing; default: identity in $ALPHANET_CONFIG_DIR, $XDG_CONFIG_HOME/alphanet or ~/.config/alphanet)')
    .option('--no-e2e', 'do not encrypt virtual connections end to end (the peer must turn it off too)')
    .addOption(
      new Option('--relay-fingerprint <sha256>', "accept only this relay key (as the relay prints it) and pin it in the known-relays file, replacing an old pin")
        .env('ALPHANET_RELAY_FINGERPRINT')
        .argParser(fingerprintArgument),
    )
    .addOption(new Option('--plaintext', 'plain TCP to the relay, no TLS (for a relay started with --plaintext)').env('ALPHANET_PLAINTEXT').conflicts('relayFingerprint'))
    .option('--inspect [url]', `stream the client's actors to a Stately inspector over WebSocket (default ${DEFAULT_INSPECT_URL})`);
}

/** The relay the flags name; a bad ALPHANET_RELAY is an ERR_INVALID_ARGUMENT naming the variable. */
export function relayOf(flags: ClientFlags): RelayAddress | RelayUrl {
  if (typeof flags.relay !== 'string') return flags.relay;
  try {
    return parseRelayFlag(flags.relay);
  } catch (error) {
    throw new ClientError('ERR_INVALID_ARGUMENT', `ALPHANET_RELAY: ${(error as Error).message}`);
  }
}

/** How a relay address is written: an IPv6 host in brackets. */
export function formatRelay(relay: RelayAddress): string {
  return net.isIPv6(relay.host) ? `[${relay.host}]:${relay.port}` : `${relay.host}:${relay.port}`;
}

/**
 * How the client trusts the relay: over TCP and wss, its key pinned on first use (or the one
 * `--relay-fingerprint` names); none over plain TCP with `--plaintext`, or over a ws:// URL,
 * which is plain by its scheme. Flags that contradict the URL are an ERR_INVALID_ARGUMENT.
 */
function trustFrom(flags: ClientFlags, relay: RelayAddress | RelayUrl): ConnectOptions['tls'] {
  const scheme = 'url' in relay ? (relay.url.startsWith('wss:') ? 'wss' : 'ws') : 'tcp';
  if (scheme === 'wss' && flags.plaintext) throw new ClientError('ERR_INVALID_ARGUMENT', `${(relay as RelayUrl).url} is WebSocket over TLS: leave out --plaintext, or give the relay's ws:// URL`);
  if (scheme === 'ws' && flags.relayFingerprint) throw new ClientError('ERR_INVALID_ARGUMENT', `${(relay as RelayUrl).url} is plain WebSocket, with no key to check: give its wss:// URL with --relay-fingerprint`);
  if (scheme === 'ws' || flags.plaintext) return false;
  return {
    ...(flags.relayFingerprint ? { fingerprint: flags.relayFingerprint } : {}),
    onPinned: ({ relay: address, fingerprint, file }) =>
      process.stderr.write(`alphanet: trusting the relay at ${address} on first use: ${fingerprint} (pinned in ${file})\n`),
  };
}

/**
 * connect() options from the shared flags. `logger` gets the client's diagnostics; without one,
 * they are logged only when ALPHANET_LOG_LEVEL asks for them. The inspector stream always logs
 * whether it reaches the inspector: a user who asked for it wants to know.
 */
export function connectOptionsFrom(flags: ClientFlags, logger?: Logger): ConnectOptions {
  const relay = relayOf(flags);
  const log = logger ?? (process.env.ALPHANET_LOG_LEVEL ? createCliLogger('alphanet-client') : undefined);
  return {
    ...('url' in relay ? { url: relay.url } : { host: relay.host, port: relay.port }),
    tls: trustFrom(flags, relay),
    ...(flags.localAddress ? { localAddress: flags.localAddress } : {}),
    ...(flags.identity ? { identity: flags.identity } : {}),
    ...(flags.e2e === false ? { e2e: false } : {}),
    ...(log ? { logger: log } : {}),
    ...(flags.inspect
      ? {
          inspect: createWebSocketInspection({
            url: flags.inspect === true ? DEFAULT_INSPECT_URL : flags.inspect,
            logger: log ?? createCliLogger('alphanet-inspect'),
          }).inspect,
        }
      : {}),
  };
}

/**
 * Prints an error in words with its code, said once, to stderr and exits 1:
 * `alphanet: <message> (<code>)`. A Node system error is worded as the OS words it
 * (`address already in use 127.0.0.1:8080 (EADDRINUSE)`); only an error with no code at all (a
 * bug) is printed without one.
 */
export function fail(error: unknown): never {
  const { code, text } = error instanceof AlphanetError ? { code: error.code, text: error.message } : errorParts(error);
  process.stderr.write(`alphanet: ${code === undefined ? text : `${text} (${code})`}\n`);
  process.exit(1);
}

/** Exits once stdout has flushed what was written to it. */
export function exitAfterStdout(code: number): void {
  process.stdout.write('', () => process.exit(code));
}

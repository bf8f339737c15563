/**
 * What differs between the client in Node and in a browser, given to the Client by its entry
 * point: connect.ts (Node: TCP, WebSocket through `ws`, the Duplex view, ALPHANET_RELAY) or
 * browser.ts (the global WebSocket only). client.ts itself imports nothing Node-only, so the
 * browser bundle can hold it.
 */
import type { Duplex } from 'node:stream';
import type { Logger } from '../logger.ts';
import type { VirtualConnection } from './connection.ts';
import type { TransportOpener } from './transport.ts';
import type { Clock } from './timer.ts';

/**
 * An identity key as client.ts and session.ts see it: public parts only. The private key and
 * everything that uses it stay behind the platform's {@link IdentityPlatform} (identity.ts in
 * Node), so client.ts needs no node:crypto and the browser bundle holds none.
 */
export interface ClientIdentity {
  /** The raw 32-byte Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The public key as unpadded base64url. */
  readonly fingerprint: string;
  /** Where it was read from, if from a file (the pins file sits beside it). */
  readonly path: string | undefined;
}

/** The pins of peers' keys per virtual IP (e2e/known-peers.ts in Node), opaque to the client. */
export interface PeerPins {
  readonly path: string;
}

/** Securing one virtual connection end to end (docs/SECURITY.md). */
export interface SecureConnectionOptions {
  identity: ClientIdentity;
  /** The connector is the Noise initiator; the acceptor the responder. */
  role: 'connector' | 'acceptor';
  pins: PeerPins | undefined;
  /** Time the handshake may take before ERR_E2E_HANDSHAKE (the client's requestTimeoutMs). */
  timeoutMs: number;
  clock: Clock | undefined;
  /** Told when a changed key is refused, besides the error itself. */
  warn: (message: string) => void;
}

/**
 * Identity keys (docs/PROTOCOL.md §2a) and end-to-end encryption, where the platform has them:
 * Node (node-identity.ts: node:crypto, node:tls, node:fs). A browser has none: its client says
 * Hello version 1 and its connections are not encrypted end to end.
 */
export interface IdentityPlatform {
  /** The identity `connect()` was given (a file path, an identity, false, or the default file), loaded. */
  load(option: string | ClientIdentity | false | undefined, logger: Logger | undefined): Promise<ClientIdentity | undefined>;
  /** Signs a relay's Challenge (§2a) with the identity's private key. */
  signChallenge(identity: ClientIdentity, challenge: Uint8Array): Uint8Array;
  /** The pins file to use: the option's path, none for false, else beside the identity file. */
  knownPeers(option: string | false | undefined, identity: ClientIdentity | undefined): PeerPins | undefined;
  /** Runs the end-to-end handshake over a raw connection and checks the peer's key. */
  secureConnection(raw: VirtualConnection, options: SecureConnectionOptions): Promise<VirtualConnection>;
  /** Whether end-to-end encryption is on when the options do not say (off under Deno, where the Noise handshake's native addon is untried). */
  readonly e2eByDefault: boolean;
}

export interface ClientPlatform {
  /** Opens the relay connection (TCP for host:port, WebSocket for a ws:// or wss:// URL). */
  readonly open: TransportOpener;
  /** The Duplex view, where there are Node streams. */
  readonly toDuplex: ((connection: VirtualConnection) => Duplex) | undefined;
  /** The relay when the options name none: "host:port", or a WebSocket URL. */
  defaultRelay(): string;
  /** The logger when the options give none: silent (pino's in Node; a no-op in a browser, so pino stays out of the bundle). */
  silentLogger(): Logger;
  /** Identity and end-to-end encryption; undefined in a browser (no identity: Hello version 1, e2e off). */
  readonly identity?: IdentityPlatform;
}

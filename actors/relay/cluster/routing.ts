/**
 * Routing across relays (docs/CLUSTER.md "Across relays"). A request from a client here for a
 * port held on another relay is prepared by a stand-in (ghost.ts) for the remote host, holding
 * that port here; the relay then routes the request to the stand-in as to any client. Whatever
 * the relay sends a stand-in crosses NATS:
 *
 * - a SocketStatusRequest or SocketConnectionRequest is a NATS request to the relay holding the
 *   host (`alphanet.relay.<id>.request`), which asks its real client through a stand-in for the
 *   requester, and the reply comes back as the stand-in's answer;
 * - an accepted connection gets a link (nats-link.ts: sequence numbers, credit, resets) opened by
 *   both relays before the accept is answered, and every ArbitraryData, WindowUpdate, SocketEnd and
 *   SocketClosed of the pair crosses it, re-addressed to each relay's own connection id.
 *
 * Identity (docs/CLUSTER.md "Identity across relays"): every ask carries the requester's proven key
 * and an accepted connect's reply the key the holder's relay announced for the accepting end; a
 * stand-in is admitted with the key of the client it speaks for, so each relay's PeerKey names
 * the true remote key and end-to-end TLS checks it as on one relay. Before the first stand-in for a
 * remote host, the holder is asked who the host is (op `identity`: its real IP and key).
 *
 * The protocol's own windows (§7) run end to end, through both relays, so what a link holds is
 * bounded by the receiver's window. A link reset (a gap, a lost NATS connection, the other relay
 * silent for `RELAY_SILENT_MS`) closes the pair at this relay with SocketClosed(Error) and a log
 * line with the link error's code.
 */
import type { Msg, NatsConnection, Subscription } from '@nats-io/transport-node';
import { CloseReason, ConnectionStatus, FailureReason, PacketType, SocketStatus, encodePacket, formatAddress, type Packet, type WireAddress } from '../../../protocol/index.ts';
import type { NatsAddressStore } from '../../../storage/index.ts';
import type { Logger } from '../../logger.ts';
import type { Relay } from '../relay-types.ts';
import { Ghost } from './ghost.ts';
import { LinkFrames } from './link-frames.ts';
import { LinkError, NatsLinkHub, type NatsLink } from './nats-link.ts';
import type { ClusterPresence } from './presence.ts';
import type { RemoteRequest, RemoteRouter } from './remote-router.ts';
import { keyText, parseKey, type IdentityAnswer, type IdentityAsk, type RemoteAnswer, type RemoteAsk } from './asks.ts';
import { StandInUse } from './stand-in-use.ts';

/** How often a relay says it is alive to the others. */
export const RELAY_ALIVE_INTERVAL_MS = 1_000;
/** A relay silent this long is gone: its links are reset. */
export const RELAY_SILENT_MS = 3_500;
/** How long a relay waits for another to answer a forwarded request (the relay's own request timeout is 10 s). */
const REMOTE_REQUEST_TIMEOUT_MS = 9_000;
/** A link's credit: above a pair's largest protocol window (16 MiB), so the link never stalls a pair that keeps §7. */
const LINK_WINDOW_BYTES = 20 * 1024 * 1024;

export interface ClusterRoutingOptions {
  /** A stand-in with no pair and no request under way this long is closed. @default DEFAULT_STAND_IN_IDLE_MS (60 s, stand-in-use.ts) */
  standInIdleMs?: number;
  /** The clock stand-in idleness is measured with, in ms. @default performance.now */
  now?: () => number;
}

interface LinkedPair {
  ghost: Ghost;
  connectionId: number;
  link: NatsLink;
  remoteRelay: string;
  /** The stand-in's port this pair holds (released when it ends). */
  port: number | undefined;
  endedHere: boolean;
  endedThere: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export class ClusterRouting implements RemoteRouter {
  readonly #nc: NatsConnection;
  readonly #relayId: string;
  readonly #presence: ClusterPresence;
  readonly #store: NatsAddressStore;
  readonly #log: Logger;
  readonly #hub: NatsLinkHub;
  #relay: Relay | undefined;
  /**
   * Stand-ins by the virtual IP and key they speak for (`<ip> <key or ->`): in ip mode two
   * processes of one machine may prove different keys, and each gets its own stand-in.
   */
  readonly #ghosts = new Map<string, Promise<Ghost>>();
  /** The same stand-ins once open, by the same names. */
  readonly #open = new Map<string, Ghost>();
  /** Each made stand-in's name and entry in #ghosts (a newer one may hold its name's place by the time it closes). */
  readonly #made = new Map<Ghost, { name: string; entry: Promise<Ghost> }>();
  /** Work under way and last use per stand-in: one in use is never closed, as idle or as stale. */
  readonly #use: StandInUse;
  /** Relay-local ids of stand-in connections (presence leaves them out). */
  readonly ghostIds = new Set<number>();
  readonly #pairs = new Map<Ghost, Map<number, LinkedPair>>();
  readonly #lastSeen = new Map<string, number>();
  #subs: Subscription[] = [];
  #detachBus: () => void = () => {};
  #timer: NodeJS.Timeout | undefined;
  #links = 0;

  constructor(nc: NatsConnection, relayId: string, presence: ClusterPresence, store: NatsAddressStore, log: Logger, options: ClusterRoutingOptions = {}) {
    this.#use = new StandInUse(options.standInIdleMs, options.now);
    this.#nc = nc;
    this.#relayId = relayId;
    this.#presence = presence;
    this.#store = store;
    this.#log = log;
    this.#hub = new NatsLinkHub(nc);
  }

  /** Starts answering other relays' requests and the liveness heartbeat. */
  attach(relay: Relay): void {
    this.#relay = relay;
    // A stand-in stays one until the relay reports its connection gone: presence must see its
    // disconnect as a stand-in's, or it would count a real host of the same virtual IP as leaving.
    // After this turn's other listeners (presence's among them) have run.
    const forget = (event: { id: number }): void => queueMicrotask(() => this.ghostIds.delete(event.id));
    relay.bus.on('client.disconnected', forget);
    this.#detachBus = () => relay.bus.off('client.disconnected', forget);
    this.#subs.push(this.#nc.subscribe(`alphanet.relay.${this.#relayId}.request`, { callback: (error, msg) => (error ? undefined : void this.#onAsk(msg)) }));
    this.#subs.push(
      this.#nc.subscribe('alphanet.relay.*.alive', {
        callback: (error, msg) => {
          if (!error) this.#lastSeen.set(msg.subject.split('.')[2], performance.now());
        },
      }),
    );
    this.#timer = setInterval(() => this.#tick(), RELAY_ALIVE_INTERVAL_MS);
    this.#timer.unref();
    this.#nc.publish(`alphanet.relay.${this.#relayId}.alive`);
  }

  #tick(): void {
    this.#nc.publish(`alphanet.relay.${this.#relayId}.alive`);
    const now = performance.now();
    for (const pairs of this.#pairs.values()) {
      for (const pair of pairs.values()) {
        const seen = this.#lastSeen.get(pair.remoteRelay);
        if (seen === undefined || now - seen > RELAY_SILENT_MS) pair.link.lost(`relay ${pair.remoteRelay} has been silent for ${RELAY_SILENT_MS} ms (stopped or cut off)`);
      }
    }
    this.closeIdleStandIns();
  }

  /**
   * Closes every stand-in with no pair and no request under way for `standInIdleMs`: each holds
   * a client slot and its ports on this relay. Runs each second; returns how many it closed.
   */
  closeIdleStandIns(): number {
    const idle = this.#use.idle((ghost) => (this.#pairs.get(ghost)?.size ?? 0) > 0);
    for (const ghost of idle) {
      // Forgotten at once, so a request arriving now makes a new stand-in rather than finding this one closing.
      this.#drop(ghost);
      ghost.close();
    }
    return idle.length;
  }

  /** Stand-ins on this relay (open or being made). */
  get standIns(): number {
    return this.#ghosts.size;
  }

  #using(ghost: Ghost, delta: number): void {
    this.#use.using(ghost, delta);
  }

  /** Forgets a stand-in that closed or is being closed. */
  #drop(ghost: Ghost): void {
    if (!this.#use.remove(ghost)) return;
    this.#retire(ghost);
    this.#made.delete(ghost);
  }

  /** Takes a stand-in out of the lookup by name: the next request makes a new one; its pairs go on, and it closes once idle. */
  #retire(ghost: Ghost): void {
    const made = this.#made.get(ghost);
    if (made === undefined) return;
    if (this.#ghosts.get(made.name) === made.entry) this.#ghosts.delete(made.name);
    if (this.#open.get(made.name) === ghost) this.#open.delete(made.name);
  }

  /** RemoteRouter: takes a request for a port held on another relay. */
  route(request: RemoteRequest): boolean {
    const holder = this.#presence.holder(request.destination.ip);
    if (this.#relay === undefined || holder === undefined || holder === this.#relayId) return false;
    if (this.#store.realIpOf(request.destination.ip) === undefined) return false;
    void (async () => {
      // The host's real IP and proven key, from the relay holding it: its stand-in here speaks with them.
      const who = await this.#askIdentity(holder, request.destination);
      const key = 'failed' in who ? 'bad' : parseKey(who.key);
      if ('failed' in who || key === 'bad') return request.fail(FailureReason.Offline);
      const ghost = await this.#ghost(request.destination.ip, who.realIp, key);
      this.#using(ghost, 1);
      const held = await ghost.hold(request.destination.port).finally(() => this.#using(ghost, -1));
      if (!held) return request.fail(FailureReason.Offline);
      request.retry();
    })().catch((error: unknown) => {
      this.#log.debug({ err: error, destination: formatAddress(request.destination) }, 'cannot route to another relay');
      request.fail(FailureReason.Offline);
    });
    return true;
  }

  /** The stand-in for `virtualIp` speaking with `publicKey` (made once). */
  #ghost(virtualIp: number, realIp: string, publicKey: Uint8Array | undefined): Promise<Ghost> {
    const name = `${virtualIp} ${keyText(publicKey) ?? '-'}`;
    let ghost = this.#ghosts.get(name);
    if (ghost === undefined) {
      this.#closeStale(virtualIp, name);
      let admitted: number | undefined;
      ghost = Ghost.open(
        this.#relay!,
        realIp,
        (clientId) => {
          admitted = clientId;
          this.ghostIds.add(clientId);
        },
        publicKey,
      ).then((g) => {
        this.#pairs.set(g, new Map());
        this.#open.set(name, g);
        this.#use.add(g);
        this.#made.set(g, { name, entry });
        g.listen((packet) => this.#fromRelay(g, virtualIp, packet));
        g.listenData((connectionId, pieces) => {
          const pair = this.#pairs.get(g)?.get(connectionId);
          if (pair === undefined) return;
          // Not copied here: the link copies the bytes into its next message, and may hold the pieces until
          // then (the next check phase, or while it waits for credit), which GhostDataListener allows.
          for (const piece of pieces) pair.link.write(Buffer.from(piece.buffer, piece.byteOffset, piece.length));
        });
        void g.closed.then(() => {
          this.#drop(g);
          for (const pair of this.#pairs.get(g)?.values() ?? []) pair.link.destroy();
          this.#pairs.delete(g);
        });
        return g;
      });
      const entry = ghost;
      ghost.catch(() => {
        if (this.#ghosts.get(name) === entry) this.#ghosts.delete(name);
      });
      this.#ghosts.set(name, ghost);
    }
    return ghost;
  }

  /**
   * Closes the stand-ins of `virtualIp` for other keys than `name`'s that carry no pair and no
   * work: a client back with a new key (ip mode: a new identity on the same machine) leaves its
   * old stand-in idle, and each would hold a client slot (--max-connections-per-ip) for good.
   */
  #closeStale(virtualIp: number, name: string): void {
    for (const [other, g] of this.#open) {
      if (other !== name && other.startsWith(`${virtualIp} `) && this.#pairs.get(g)?.size === 0 && !this.#use.busy(g)) {
        // Forgotten first: nothing finds a closing stand-in (a hold on a port it held would succeed).
        this.#drop(g);
        g.close();
      }
    }
  }

  async #ask(relayId: string, ask: RemoteAsk): Promise<RemoteAnswer> {
    const reply = await this.#nc.request(`alphanet.relay.${relayId}.request`, encoder.encode(JSON.stringify(ask)), { timeout: REMOTE_REQUEST_TIMEOUT_MS });
    return JSON.parse(decoder.decode(reply.data)) as RemoteAnswer;
  }

  /** Who holds `destination` on relay `relayId` (its real IP and proven key). */
  async #askIdentity(relayId: string, destination: WireAddress): Promise<IdentityAnswer> {
    const ask: IdentityAsk = { op: 'identity', from: this.#relayId, destination };
    const reply = await this.#nc.request(`alphanet.relay.${relayId}.request`, encoder.encode(JSON.stringify(ask)), { timeout: REMOTE_REQUEST_TIMEOUT_MS });
    return JSON.parse(decoder.decode(reply.data)) as IdentityAnswer;
  }

  /** What this relay sent a stand-in: requests cross to the host's relay, pair traffic to its link. */
  #fromRelay(ghost: Ghost, virtualIp: number, packet: Packet): void {
    switch (packet.type) {
      case PacketType.SocketStatusRequest:
      case PacketType.SocketConnectionRequest:
        this.#using(ghost, 1);
        void this.#forward(ghost, virtualIp, packet)
          .catch((error: unknown) => this.#log.warn({ err: error }, 'forwarding a request to another relay failed'))
          .finally(() => this.#using(ghost, -1));
        return;
      case PacketType.ArbitraryData:
      case PacketType.WindowUpdate:
      case PacketType.SocketEnd:
      case PacketType.SocketClosed: {
        const pair = this.#pairs.get(ghost)?.get(packet.connectionId);
        if (pair === undefined) return;
        pair.link.write(encodePacket({ ...packet, connectionId: 0 }));
        if (packet.type === PacketType.SocketEnd) pair.endedHere = true;
        if (packet.type === PacketType.SocketClosed || (pair.endedHere && pair.endedThere)) this.#finish(pair);
        return;
      }
      default:
    }
  }

  /** A request the relay gave the stand-in for `virtualIp`, asked of the relay holding that host. */
  async #forward(ghost: Ghost, virtualIp: number, packet: Packet): Promise<void> {
    if (packet.type !== PacketType.SocketStatusRequest && packet.type !== PacketType.SocketConnectionRequest) return;
    const holder = this.#presence.holder(virtualIp);
    // The requester is a client of this relay: its real IP and the key it proved here.
    const requester = this.#relay?.identityAt(packet.source);
    const refuse = () => {
      if (packet.type === PacketType.SocketStatusRequest) ghost.send({ type: PacketType.SocketStatusResponse, requestId: packet.requestId, status: SocketStatus.NotBound });
      else ghost.send({ type: PacketType.SocketConnectionResponse, requestId: packet.requestId, connectionId: packet.connectionId, status: ConnectionStatus.NotListening });
    };
    if (holder === undefined || holder === this.#relayId || requester === undefined) return refuse();
    const ask: RemoteAsk = {
      op: packet.type === PacketType.SocketStatusRequest ? 'status' : 'connect',
      from: this.#relayId,
      realIp: requester.realIp,
      key: keyText(requester.publicKey),
      source: packet.source,
      destination: packet.destination,
    };
    if (packet.type === PacketType.SocketStatusRequest) {
      const answer = await this.#ask(holder, ask).catch(() => ({ failed: FailureReason.Offline }));
      if ('status' in answer) ghost.send({ type: PacketType.SocketStatusResponse, requestId: packet.requestId, status: answer.status });
      else refuse();
      return;
    }
    const id = `${this.#relayId}-${++this.#links}`;
    const link = this.#hub.open({ id, end: 'a', windowBytes: LINK_WINDOW_BYTES });
    link.on('error', () => {});
    await link.ready;
    const answer = await this.#ask(holder, { ...ask, link: id }).catch(() => ({ failed: FailureReason.Offline }));
    if (!('status' in answer) || answer.status !== ConnectionStatus.Accepted || !ghost.alive) {
      link.destroy();
      if ('status' in answer) ghost.send({ type: PacketType.SocketConnectionResponse, requestId: packet.requestId, connectionId: packet.connectionId, status: answer.status });
      else refuse();
      return;
    }
    // Only a requester with a key hears PeerKey (and only then does the holder's relay announce one to its stand-in).
    if (ask.key !== null && (answer.key ?? null) !== keyText(ghost.publicKey)) {
      // The host now proves another key than this stand-in speaks with (it came back with a new
      // identity): this relay would announce a false PeerKey. Refuse, and retire the stand-in, so the
      // next request asks the holder again and gets a stand-in with the true key; pairs it still
      // carries (made under the old key) go on until they end, then it closes as idle.
      this.#log.info({ destination: formatAddress(packet.destination), remoteRelay: holder }, "a remote host's identity key changed; its stand-in is replaced");
      link.destroy();
      refuse();
      this.#retire(ghost);
      if ((this.#pairs.get(ghost)?.size ?? 0) === 0) {
        this.#drop(ghost);
        ghost.close();
      }
      return;
    }
    ghost.send({ type: PacketType.SocketConnectionResponse, requestId: packet.requestId, connectionId: packet.connectionId, status: ConnectionStatus.Accepted });
    // Only now: the relay forwards nothing of the pair from the target before its accept.
    this.#join(ghost, packet.connectionId, link, holder, undefined);
  }

  /** Another relay asks: a client of its wants one of ours. */
  async #onAsk(msg: Msg): Promise<void> {
    let ask: RemoteAsk | IdentityAsk;
    try {
      ask = JSON.parse(decoder.decode(msg.data)) as RemoteAsk | IdentityAsk;
    } catch {
      return;
    }
    const reply = (answer: RemoteAnswer | IdentityAnswer): void => void msg.respond(encoder.encode(JSON.stringify(answer)));
    let used: Ghost | undefined;
    // Until the pair is joined, a failure here must give back the port and the link.
    let pending: { ghost: Ghost; port: number; link?: NatsLink } | undefined;
    try {
      if (this.#relay === undefined) return reply({ failed: FailureReason.Offline });
      if (ask.op === 'identity') {
        const who = this.#relay.identityAt(ask.destination);
        return reply(who === undefined ? { failed: FailureReason.Offline } : { realIp: who.realIp, key: keyText(who.publicKey) });
      }
      // Vouched for by the asking relay, which verified it (trusted: one NATS account, docs/SECURITY.md).
      const key = parseKey(ask.key);
      if (key === 'bad') return reply({ failed: FailureReason.InvalidRequest });
      const ghost = await this.#ghost(ask.source.ip, ask.realIp, key);
      this.#using((used = ghost), 1);
      if (!(await ghost.hold(ask.source.port))) return reply({ failed: FailureReason.InvalidRequest });
      const requestId = ghost.newRequestId();
      if (ask.op === 'status') {
        ghost.send({ type: PacketType.SocketStatusRequest, requestId, source: ask.source, destination: ask.destination });
        const answer = await ghost.answer(requestId).finally(() => ghost.release(ask.source.port));
        return reply(answer.type === PacketType.SocketStatusResponse ? { status: answer.status } : { failed: answer.type === PacketType.RequestFailed ? answer.reason : FailureReason.Offline });
      }
      pending = { ghost, port: ask.source.port };
      const link = this.#hub.open({ id: ask.link!, end: 'b', windowBytes: LINK_WINDOW_BYTES });
      pending.link = link;
      link.on('error', () => {});
      await link.ready;
      ghost.send({ type: PacketType.SocketConnectionRequest, requestId, connectionId: 0, source: ask.source, destination: ask.destination });
      const answer = await ghost.answer(requestId);
      pending = undefined;
      if (answer.type !== PacketType.SocketConnectionResponse || answer.status !== ConnectionStatus.Accepted) {
        link.destroy();
        ghost.release(ask.source.port);
        return reply(answer.type === PacketType.SocketConnectionResponse ? { status: answer.status } : { failed: answer.type === PacketType.RequestFailed ? answer.reason : FailureReason.Offline });
      }
      if (!this.#join(ghost, answer.connectionId, link, ask.from, ask.source.port)) {
        ghost.takePeerKey(answer.connectionId);
        return reply({ failed: FailureReason.Offline });
      }
      // The key this relay announced to the stand-in for the accepting end: the asking relay's stand-in must announce the same.
      reply({ status: ConnectionStatus.Accepted, key: keyText(ghost.takePeerKey(answer.connectionId)) });
    } catch (error) {
      this.#log.debug({ err: error }, 'a request from another relay failed');
      if (pending !== undefined) {
        pending.link?.destroy();
        pending.ghost.release(pending.port);
      }
      reply({ failed: FailureReason.Offline });
    } finally {
      if (used !== undefined) this.#using(used, -1);
    }
  }

  /** The pair `connectionId` of `ghost` now rides `link`: what arrives on it, the stand-in sends. */
  /** Joins an accepted pair to its link; false (the connection closed here) when the link or stand-in is already gone. */
  #join(ghost: Ghost, connectionId: number, link: NatsLink, remoteRelay: string, port: number | undefined): boolean {
    const pair: LinkedPair = { ghost, connectionId, link, remoteRelay, port, endedHere: false, endedThere: false };
    if (link.destroyed || !ghost.alive) {
      // The other relay gave up waiting (its link reset this one) or the stand-in closed meanwhile:
      // the accepted connection must not live on with nothing behind it.
      ghost.takeEarly(connectionId);
      ghost.send({ type: PacketType.SocketClosed, connectionId, reason: CloseReason.Error });
      if (port !== undefined) ghost.release(port);
      link.destroy();
      return false;
    }
    this.#pairs.get(ghost)?.set(connectionId, pair);
    if (!this.#lastSeen.has(remoteRelay)) this.#lastSeen.set(remoteRelay, performance.now());
    // The link's chunks go to the stand-in as they are, re-addressed in place (link-frames.ts).
    let paused = false;
    const resume = (): void => {
      paused = false;
      link.resume();
    };
    const frames = new LinkFrames(connectionId, {
      bytes: (bytes) => {
        if (!ghost.sendFrame(bytes) && !paused) {
          // The relay is not taking the stand-in's bytes (its destination is full): stop reading the link,
          // so its credit stops and the other relay holds the sender back.
          paused = true;
          link.pause();
          ghost.onceDrained(resume);
        }
      },
      ended: (closed) => {
        if (!closed) pair.endedThere = true;
        if (closed || (pair.endedHere && pair.endedThere)) this.#finish(pair);
      },
    });
    link.on('data', (chunk: Buffer) => {
      const error = frames.push(chunk);
      if (error !== undefined) link.destroy(new LinkError('ERR_LINK_PROTOCOL', `link ${link.id} carried a malformed frame: ${error}`));
    });
    link.on('error', (error: Error) => {
      if (!this.#pairs.get(ghost)?.has(connectionId)) return;
      const code = error instanceof LinkError ? error.code : 'ERR_LINK_LOST';
      this.#log.warn({ code, connectionId, remoteRelay, err: error }, 'a cross-relay connection was reset');
      ghost.send({ type: PacketType.SocketClosed, connectionId, reason: CloseReason.Error });
      this.#forget(pair);
    });
    link.on('close', () => this.#forget(pair));
    // What the accepting end sent before this join (ghost.ts takeEarly), in order, ahead of the rest.
    for (const replay of ghost.takeEarly(connectionId)) replay();
    return true;
  }

  /** The pair is over at this relay: end the link (cleanly) once what we had is written. */
  #finish(pair: LinkedPair): void {
    this.#forget(pair);
    pair.link.end();
  }

  #forget(pair: LinkedPair): void {
    const pairs = this.#pairs.get(pair.ghost);
    if (pairs?.get(pair.connectionId) !== pair) return;
    pairs.delete(pair.connectionId);
    if (pair.port !== undefined) pair.ghost.release(pair.port);
    this.#using(pair.ghost, 0);
  }

  /** Stops answering and heartbeating; closes every stand-in (their pairs close with them). */
  async close(): Promise<void> {
    clearInterval(this.#timer);
    for (const sub of this.#subs) sub.unsubscribe();
    this.#detachBus();
    for (const ghost of await Promise.allSettled([...this.#ghosts.values()])) if (ghost.status === 'fulfilled') ghost.value.close();
  }
}

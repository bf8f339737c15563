/**
 * The real side of the stateful fuzz: one relay (startRelay, loopback, memory store) and a
 * raw-protocol client per model slot, each from its own loopback source address. It sends what
 * a command says, waits until everything the relay did because of it has arrived (a Ping
 * barrier), and checks what each client received against the model's expectations. One
 * harness serves many cases: between cases the model's clean-up commands undo what a case
 * built, so a case costs a few round trips on loopback, not a relay start.
 */
import { CLOSE_LINGER_MS, startRelay, type Relay } from '../actors/relay/index.ts';
import { openMemoryAddressStore, type AddressStore } from '../storage/index.ts';
import { PacketType, encodePacket, type Packet } from '../protocol/index.ts';
import { RawClient, packetName } from '../specs/helpers/raw-client.ts';
import { MODEL_LIMITS, RelayModel, SLOT_ADDRESSES, packetText, type Expectation } from './relay-model.ts';

/** Longest any wait may take before the case fails with a message. */
export const WAIT_TIMEOUT_MS = 5_000;

/** A failure of the relay against the model. */
export class ModelMismatch extends Error {
  override name = 'ModelMismatch';
}

function withTimeout<T>(promise: Promise<T>, what: string, ms = WAIT_TIMEOUT_MS): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new ModelMismatch(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export class RelayHarness {
  readonly model = new RelayModel();
  readonly clients: (RawClient | undefined)[] = SLOT_ADDRESSES.map(() => undefined);
  /** The relay's id of each slot's current connection (from client.connected). */
  readonly relayIds: (number | undefined)[] = SLOT_ADDRESSES.map(() => undefined);
  /** Packets checked against the model, by type name: what the fuzz actually exercised. */
  readonly seen: Map<string, number>;
  /** Relay bus events of interest, counted: did the fuzz reach backpressure and protocol errors? */
  readonly events: Map<string, number>;
  /** Set once anything went wrong: the next case starts on a new relay. */
  broken = false;
  #relay!: Relay;
  #store!: AddressStore;
  #lastConnected: number | undefined;
  #disconnected = new Set<number>();
  #disconnectWaiters: { id: number; resolve: () => void }[] = [];
  #nonce = 1;
  #crash: unknown;
  readonly #onCrash = (error: unknown) => {
    this.#crash ??= error;
  };

  private constructor(seen: Map<string, number>, events: Map<string, number>) {
    this.seen = seen;
    this.events = events;
  }

  /** Starts a relay and the harness around it; `seen` collects the packet counts (shared across harnesses). */
  static async start(seen = new Map<string, number>(), events = new Map<string, number>()): Promise<RelayHarness> {
    const h = new RelayHarness(seen, events);
    h.#store = await openMemoryAddressStore();
    h.#relay = await startRelay({
      host: '127.0.0.1',
      port: 0,
      store: h.#store,
      // Nothing may time out during a case: timeouts are not what this fuzz decides.
      keepaliveIntervalMs: 600_000,
      keepaliveTimeoutMs: 1_800_000,
      helloTimeoutMs: 600_000,
      requestTimeoutMs: 600_000,
      idleTimeoutMs: 0,
      // Low, so a burst into a client that stopped reading fills the relay's queue past it and
      // the sender is paused (§7) once the kernel's buffers are full, within one 1 MiB window.
      highWaterMarkBytes: 16 * 1024,
      ...MODEL_LIMITS,
    });
    const count = (name: string) => events.set(name, (events.get(name) ?? 0) + 1);
    h.#relay.bus.on('flow.paused', () => count('flow.paused'));
    h.#relay.bus.on('client.protocolError', () => count('client.protocolError'));
    h.#relay.bus.on('pair.closed', () => count('pair.closed'));
    h.#relay.bus.on('client.connected', (e) => {
      h.#lastConnected = e.id;
    });
    h.#relay.bus.on('client.disconnected', (e) => {
      h.#disconnected.add(e.id);
      for (const w of h.#disconnectWaiters.filter((x) => x.id === e.id)) w.resolve();
      h.#disconnectWaiters = h.#disconnectWaiters.filter((x) => x.id !== e.id);
    });
    process.on('uncaughtException', h.#onCrash);
    return h;
  }

  get relay(): Relay {
    return this.#relay;
  }

  async close(): Promise<void> {
    for (const c of this.clients) c?.socket.destroy();
    await this.#relay.close();
    await this.#store.close();
    process.off('uncaughtException', this.#onCrash);
  }

  /** Fails the case if the relay threw anywhere (an uncaught exception is a crash). */
  checkAlive(): void {
    if (this.#crash !== undefined) {
      const crash = this.#crash;
      throw new ModelMismatch(`the relay crashed: ${crash instanceof Error ? crash.stack : String(crash)}`);
    }
  }

  client(slot: number): RawClient {
    const c = this.clients[slot];
    if (c === undefined) throw new ModelMismatch(`slot ${slot} has no connection`);
    return c;
  }

  /** Writes each piece with its own write() (TCP may still merge them; it may also not). */
  write(slot: number, pieces: readonly Uint8Array[]): void {
    const socket = this.client(slot).socket;
    for (const piece of pieces) if (piece.length > 0) socket.write(piece);
  }

  send(slot: number, packet: Packet): void {
    this.client(slot).socket.write(encodePacket(packet));
  }

  /** Opens a slot's connection and says Hello; the VirtualIP is checked against the model. */
  async connect(slot: number, hello: Uint8Array | undefined): Promise<RawClient> {
    const client = await withTimeout(RawClient.connect({ port: this.#relay.port, localAddress: SLOT_ADDRESSES[slot] }), `slot ${slot} to connect`);
    this.clients[slot] = client;
    this.#lastConnected = undefined;
    client.send(hello ?? encodePacket({ type: PacketType.Hello, version: 1 }));
    return client;
  }

  async expectVirtualIp(slot: number, expectation: Expectation): Promise<void> {
    const client = this.client(slot);
    const packet = await withTimeout(client.next(undefined, WAIT_TIMEOUT_MS), `VirtualIP on slot ${slot}`);
    if (!expectation.match(packet)) throw new ModelMismatch(`slot ${slot}: expected ${expectation.what}, got ${packetText(packet)}`);
    expectation.onMatch?.(packet);
    if (this.#lastConnected === undefined) throw new ModelMismatch(`slot ${slot}: VirtualIP without client.connected`);
    this.relayIds[slot] = this.#lastConnected;
  }

  /** Waits until the relay has released the slot's connection, and until its TCP connection closed. */
  async awaitRelease(slot: number, client: RawClient): Promise<void> {
    const id = this.relayIds[slot];
    if (id !== undefined && !this.#disconnected.has(id)) {
      await withTimeout(
        new Promise<void>((resolve) => this.#disconnectWaiters.push({ id, resolve })),
        `the relay to release slot ${slot}`,
      );
    }
    // The relay closes a refused connection after its Error, or at the latest after its linger.
    await withTimeout(client.closed, `slot ${slot}'s TCP connection to close`, WAIT_TIMEOUT_MS + CLOSE_LINGER_MS);
    this.relayIds[slot] = undefined;
  }

  /** Waits for the relay to release a connection it refused before it had a relay id we saw. */
  async awaitClosed(slot: number, client: RawClient): Promise<void> {
    await withTimeout(client.closed, `slot ${slot}'s refused connection to close`, WAIT_TIMEOUT_MS + CLOSE_LINGER_MS);
  }

  async #ping(slot: number): Promise<void> {
    const client = this.client(slot);
    const nonce = this.#nonce++ >>> 0;
    client.send({ type: PacketType.Ping, nonce });
    const pong = await withTimeout(client.next(PacketType.Pong, WAIT_TIMEOUT_MS), `Pong ${nonce} on slot ${slot}`);
    if (pong.nonce !== nonce) throw new ModelMismatch(`slot ${slot}: Pong ${pong.nonce}, expected ${nonce}`);
  }

  /**
   * Waits until everything the relay did because of the last command has reached every client:
   * first the sender's Ping (the relay has handled all the sender wrote before it), then every
   * other live slot's (its Pong follows whatever the relay wrote to it before).
   */
  async barrier(first: number | undefined): Promise<void> {
    if (first !== undefined && this.model.slots[first].live) await this.#ping(first);
    await Promise.all(this.model.slots.flatMap((s, i) => (s.live && i !== first ? [this.#ping(i)] : [])));
  }

  /**
   * Checks what each client received since the last check against `expected`: every expected
   * packet arrived exactly once, nothing else did, and data on each connection in order.
   * `extra` holds clients whose connection ended during the command (their last packets).
   */
  verify(expected: readonly Expectation[], extra: ReadonlyMap<number, RawClient> = new Map()): void {
    this.checkAlive();
    for (let slot = 0; slot < SLOT_ADDRESSES.length; slot++) {
      const clients = [extra.get(slot), this.clients[slot]].filter((c, i, all): c is RawClient => c !== undefined && all.indexOf(c) === i);
      const received = clients.flatMap((c) => {
        if (c.decodeError !== undefined) throw new ModelMismatch(`slot ${slot} received bytes it cannot decode: ${c.decodeError.message}`);
        return c.queue.splice(0);
      });
      const waiting = expected.filter((e) => e.slot === slot);
      const matched = new Set<Expectation>();
      for (const packet of received) {
        // Only what the earliest frame still owed can come next (seq), data strictly in order.
        const open = waiting.filter((e) => !matched.has(e));
        const first = Math.min(...open.filter((e) => e.optional !== true).map((e) => e.seq ?? 0));
        const now = open.filter((e) => e.optional === true || (e.seq ?? 0) === first);
        let hit: Expectation | undefined;
        if (packet.type === PacketType.ArbitraryData) {
          const next = open.find((e) => e.dataOf === packet.connectionId);
          if (next !== undefined && now.includes(next) && next.match(packet)) hit = next;
        } else {
          hit = now.find((e) => e.dataOf === undefined && e.match(packet));
        }
        if (hit === undefined) {
          const want = waiting.filter((e) => !matched.has(e)).map((e) => e.what);
          throw new ModelMismatch(`slot ${slot} received ${packetText(packet)}; still expected: ${want.length > 0 ? want.join('; ') : 'nothing'}`);
        }
        matched.add(hit);
        hit.onMatch?.(packet);
        const name = packetName(packet.type);
        this.seen.set(name, (this.seen.get(name) ?? 0) + 1);
      }
      const missing = waiting.filter((e) => !matched.has(e) && e.optional !== true);
      if (missing.length > 0) throw new ModelMismatch(`slot ${slot} never received: ${missing.map((e) => e.what).join('; ')}`);
    }
    this.#checkTables();
  }

  /** The relay's own tables agree with the model: clients, their ports, pairs and pending requests. */
  #checkTables(): void {
    const status = this.#relay.status();
    const m = this.model;
    const live = m.slots.filter((s) => s.live).length;
    if (status.totals.clientsConnected !== live) throw new ModelMismatch(`relay has ${status.totals.clientsConnected} clients, model ${live}`);
    m.slots.forEach((s, slot) => {
      if (!s.live) return;
      const entry = status.clients.find((c) => c.id === this.relayIds[slot]);
      if (entry === undefined) throw new ModelMismatch(`relay does not list slot ${slot}'s connection`);
      const ports = [...entry.ports].sort((a, b) => a - b).join(',');
      const want = [...s.ports].sort((a, b) => a - b).join(',');
      if (ports !== want) throw new ModelMismatch(`slot ${slot} holds ports [${ports}] at the relay, model [${want}]`);
    });
    const pairs = status.pairs.map((p) => p.id).sort((a, b) => a - b).join(',');
    const want = m.pairs.map((p) => p.id).sort((a, b) => a - b).join(',');
    if (pairs !== want) throw new ModelMismatch(`relay has pairs [${pairs}], model [${want}]`);
    if (status.totals.pendingRequests !== m.pendingCount()) {
      throw new ModelMismatch(`relay has ${status.totals.pendingRequests} pending requests, model ${m.pendingCount()}`);
    }
  }
}

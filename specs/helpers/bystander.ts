/**
 * A well-behaved pair that keeps exchanging data through the relay while a spec attacks it:
 * A sends a numbered message, B checks it byte for byte and echoes it, A checks the echo, both
 * grant the window back, again and again. Every step waits with a generous timeout that fails
 * with a message, so a relay the attack stalls or breaks fails the spec; nothing measures speed.
 */
import { PacketType, encodeArbitraryData } from '../../protocol/index.ts';
import { RawClient } from './raw-client.ts';
import { pairUp } from './relay-fixture.ts';

/** How long one message or echo may take during an attack before the spec fails: generous on purpose. */
export const BYSTANDER_STEP_TIMEOUT_MS = 15_000;
const MESSAGE_BYTES = 2048;

function message(seq: number): Uint8Array {
  const bytes = new Uint8Array(MESSAGE_BYTES);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (seq * 31 + i) & 0xff;
  return bytes;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(a, b) === 0;
}

export class Bystander {
  /** Round trips completed, each checked byte for byte. */
  rounds = 0;
  #failure: Error | undefined;
  #stopped = false;
  #loop: Promise<void> = Promise.resolve();
  #waiters: { rounds: number; resolve: () => void }[] = [];
  readonly a: RawClient;
  readonly b: RawClient;
  readonly #connectionId: number;

  private constructor(a: RawClient, b: RawClient, connectionId: number) {
    this.a = a;
    this.b = b;
    this.#connectionId = connectionId;
  }

  /** Opens A (`aAddress`) and B (`bAddress`, listening on port 7), pairs them and starts exchanging. */
  static async start(port: number, aAddress: string, bAddress: string): Promise<Bystander> {
    const { client: a, virtualIp: aIp } = await RawClient.open({ port, localAddress: aAddress });
    const { client: b, virtualIp: bIp } = await RawClient.open({ port, localAddress: bAddress });
    const { connectionId } = await pairUp(a, aIp.ip, b, bIp.ip, 7);
    const bystander = new Bystander(a, b, connectionId);
    bystander.#loop = bystander.#run();
    return bystander;
  }

  async #run(): Promise<void> {
    const id = this.#connectionId;
    try {
      for (let seq = 0; !this.#stopped; seq++) {
        const sent = message(seq);
        this.a.send(encodeArbitraryData(id, sent));
        const got = await this.b.next(PacketType.ArbitraryData, BYSTANDER_STEP_TIMEOUT_MS);
        if (got.connectionId !== id || !same(got.data, sent)) throw new Error(`bystander message ${seq} arrived changed`);
        this.b.send({ type: PacketType.WindowUpdate, connectionId: id, bytes: sent.length });
        this.b.send(encodeArbitraryData(id, got.data.slice()));
        const echo = await this.a.next(PacketType.ArbitraryData, BYSTANDER_STEP_TIMEOUT_MS);
        if (echo.connectionId !== id || !same(echo.data, sent)) throw new Error(`bystander echo ${seq} arrived changed`);
        this.a.send({ type: PacketType.WindowUpdate, connectionId: id, bytes: sent.length });
        this.rounds++;
        this.#waiters = this.#waiters.filter((w) => (w.rounds <= this.rounds ? (w.resolve(), false) : true));
      }
    } catch (error) {
      this.#failure = new Error(`bystander pair failed after ${this.rounds} round trips: ${(error as Error).message}`);
      for (const w of this.#waiters.splice(0)) w.resolve();
    }
  }

  /**
   * Resolves once `n` more round trips have completed, checked; rejects if they have not within
   * `timeoutMs` (generous: the attack may slow the relay, it must not stop it) or the pair broke.
   */
  advance(n = 3, timeoutMs = 3 * BYSTANDER_STEP_TIMEOUT_MS): Promise<void> {
    const target = this.rounds + n;
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`bystander pair made ${this.rounds - target + n} of ${n} round trips within ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#waiters.push({
        rounds: target,
        resolve: () => {
          clearTimeout(timer);
          if (this.#failure) reject(this.#failure);
          else resolve();
        },
      });
    });
  }

  /** Stops after the round trip in progress; rejects if the pair failed. Returns the round trips made. */
  async stop(): Promise<number> {
    this.#stopped = true;
    await this.#loop;
    this.a.socket.destroy();
    this.b.socket.destroy();
    if (this.#failure) throw this.#failure;
    return this.rounds;
  }
}

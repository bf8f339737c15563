/**
 * A raw WebSocket client of the relay for specs: sends bytes as binary (or text) messages it is
 * given, decodes what comes back into packets, and says how the WebSocket closed. Every wait
 * fails after WAIT_MS naming what it waited for.
 */
import { WebSocket } from 'ws';
import { FrameDecoder, PacketType, decodeFrame, encodePacket, PROTOCOL_VERSION, type Packet } from '../../protocol/index.ts';
import { WAIT_MS, within } from '../observe/wait.ts';

export interface RawWsOptions {
  localAddress?: string;
  headers?: Record<string, string>;
  /** Answer Ping with Pong. @default true */
  autoPong?: boolean;
}

export class RawWsClient {
  readonly ws: WebSocket;
  readonly packets: Packet[] = [];
  /** Resolves with the close code once the WebSocket has closed. */
  readonly closed: Promise<{ code: number; reason: string }>;
  #wake: Array<() => void> = [];
  readonly #decoder: FrameDecoder;

  private constructor(ws: WebSocket, autoPong: boolean) {
    this.ws = ws;
    this.#decoder = new FrameDecoder((_type, frame) => {
      const packet = decodeFrame(frame.slice());
      if (packet instanceof Error) throw packet;
      if (autoPong && packet.type === PacketType.Ping) this.send(encodePacket({ type: PacketType.Pong, nonce: packet.nonce }));
      this.packets.push(packet);
      for (const wake of this.#wake.splice(0)) wake();
    });
    ws.on('message', (data: Buffer) => this.#decoder.push(data));
    this.closed = new Promise((resolve) => ws.once('close', (code: number, reason: Buffer) => resolve({ code, reason: reason.toString() })));
    ws.on('error', () => {});
  }

  /** Opens a WebSocket to `url`; rejects if it does not open. */
  static async open(url: string, options: RawWsOptions = {}): Promise<RawWsClient> {
    const ws = new WebSocket(url, { perMessageDeflate: false, ...(options.localAddress ? { localAddress: options.localAddress } : {}), headers: options.headers ?? {} });
    const client = new RawWsClient(ws, options.autoPong ?? true);
    await within(`WebSocket to ${url} opens`, new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    }));
    return client;
  }

  /** Opens, says Hello and waits for VirtualIP. */
  static async hello(url: string, options: RawWsOptions = {}): Promise<{ client: RawWsClient; ip: number }> {
    const client = await RawWsClient.open(url, options);
    client.send(encodePacket({ type: PacketType.Hello, version: PROTOCOL_VERSION }));
    const answer = await client.next(PacketType.VirtualIp);
    return { client, ip: (answer as Extract<Packet, { type: typeof PacketType.VirtualIp }>).ip };
  }

  send(bytes: Uint8Array | string): void {
    this.ws.send(bytes, { binary: typeof bytes !== 'string' });
  }

  /** The next packet of `type` not yet taken (packets before it are dropped). */
  async next(type: number, ms = WAIT_MS): Promise<Packet> {
    return within(`a packet of type 0x${type.toString(16)} over WebSocket`, (async () => {
      for (;;) {
        const i = this.packets.findIndex((p) => p.type === type);
        if (i >= 0) return this.packets.splice(0, i + 1)[i];
        await new Promise<void>((resolve) => this.#wake.push(resolve));
      }
    })(), ms);
  }
}

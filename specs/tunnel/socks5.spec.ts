/** The SOCKS5 parser (RFC 1928) on byte fixtures, fed whole and split at every boundary. */
import t from 'tap';
import { Socks5Parser, encodeReply } from '../../tunnel/socks5.ts';
import type { Socks5Event } from '../../tunnel/socks5.ts';
import { splits } from '../helpers/splits.ts';

const hex = (text: string): Buffer => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function feedSocks(pieces: Buffer[]): { events: Socks5Event[]; rest: Buffer } {
  const parser = new Socks5Parser();
  const events = pieces.flatMap((p) => parser.write(p));
  return { events, rest: parser.rest() };
}

t.test('SOCKS5: greeting, CONNECT to IPv4, early data kept — at every split', async (t) => {
  // VER 5, 2 methods (0, 2); VER 5 CONNECT RSV IPv4 10.0.0.7 port 8080; then "hi".
  const bytes = hex('05 02 00 02  05 01 00 01 0a000007 1f90  6869');
  const expected = [
    { type: 'socks.greeting', methods: [0, 2] },
    { type: 'socks.request', command: 1, address: { type: 'ipv4', host: '10.0.0.7' }, port: 8080 },
  ];
  const wrong = splits(bytes).filter((pieces) => {
    const { events, rest } = feedSocks(pieces);
    return JSON.stringify(events) !== JSON.stringify(expected) || rest.toString() !== 'hi';
  });
  t.same(wrong.map((pieces) => pieces.map((p) => p.length).join('+')), [], 'the same events and rest at every split');
});

t.test('SOCKS5: DOMAINNAME and IPv6 addresses at every split', async (t) => {
  const domain = Buffer.concat([hex('05 01 00  05 01 00 03 08'), Buffer.from('10.0.0.7'), hex('0050')]);
  const request = { type: 'socks.request', command: 1, address: { type: 'domain', host: '10.0.0.7' }, port: 80 };
  const wrong = splits(domain).filter((pieces) => JSON.stringify(feedSocks(pieces).events[1]) !== JSON.stringify(request));
  t.same(wrong.map((pieces) => pieces.map((p) => p.length).join('+')), [], 'DOMAINNAME at every split');
  const v6 = hex('05 01 00  05 01 00 04 20010db8000000000000000000000001 0016');
  const { events } = feedSocks([v6]);
  t.same(events[1], { type: 'socks.request', command: 1, address: { type: 'ipv6', host: '2001:db8:0:0:0:0:0:1' }, port: 22 });
});

t.test('SOCKS5: what is not SOCKS5 is reported once, with the reply to give', async (t) => {
  t.same(feedSocks([hex('04 01 0050 0a000007 00')]).events, [{ type: 'socks.invalid', reply: undefined, message: 'not SOCKS5: version byte 0x04 in the greeting' }]);
  t.same(feedSocks([hex('05 00')]).events, [{ type: 'socks.invalid', reply: undefined, message: 'the greeting offers no authentication method' }]);
  t.match(feedSocks([hex('05 01 00 04 01 00 01')]).events, [{ type: 'socks.greeting' }, { type: 'socks.invalid', reply: 0x01, message: /version byte 0x04 in the request/ }]);
  t.match(feedSocks([hex('05 01 00 05 01 00 09 00000000')]).events, [{ type: 'socks.greeting' }, { type: 'socks.invalid', reply: 0x08, message: 'unknown address type 0x09' }]);
  const parser = new Socks5Parser();
  parser.write(hex('05 00'));
  t.same(parser.write(hex('05 01 00')), [], 'nothing more after a failure');
  t.equal(parser.state, 'failed');
});

t.test('SOCKS5 replies', async (t) => {
  t.same([...encodeReply(0, { address: '10.0.0.3', port: 40000 })], [5, 0, 0, 1, 10, 0, 0, 3, 0x9c, 0x40]);
  t.same([...encodeReply(5)], [5, 5, 0, 1, 0, 0, 0, 0, 0, 0]);
});


/** The HTTP CONNECT parser on byte fixtures, fed whole and split at every boundary. */
import t from 'tap';
import { HttpConnectParser, encodeRefusal } from '../../tunnel/http-connect.ts';
import type { HttpConnectEvent } from '../../tunnel/http-connect.ts';
import { splits } from '../helpers/splits.ts';

function feedHttp(pieces: Buffer[], maxHeaderBytes?: number): { events: HttpConnectEvent[]; rest: Buffer } {
  const parser = new HttpConnectParser(maxHeaderBytes === undefined ? {} : { maxHeaderBytes });
  const events = pieces.map((p) => parser.write(p)).filter((e): e is HttpConnectEvent => e !== undefined);
  return { events, rest: parser.rest() };
}

t.test('HTTP CONNECT: a request with headers and early data, at every split, CRLF and bare LF', async (t) => {
  for (const eol of ['\r\n', '\n']) {
    const bytes = Buffer.from(`CONNECT 10.0.0.7:443 HTTP/1.1${eol}Host: 10.0.0.7:443${eol}${eol}\x16\x03`, 'latin1');
    const expected = [{ type: 'http.connect', host: '10.0.0.7', port: 443 }];
    const wrong = splits(bytes).filter((pieces) => {
      const { events, rest } = feedHttp(pieces);
      // The early bytes after the header section belong to the tunnel, whatever chunk they came in.
      return JSON.stringify(events) !== JSON.stringify(expected) || rest.toString('latin1') !== '\x16\x03';
    });
    t.same(wrong.map((pieces) => pieces.map((p) => p.length).join('+')), [], `${JSON.stringify(eol)}: the same request and rest at every split`);
  }
  t.same(feedHttp([Buffer.from('CONNECT [::1]:22 HTTP/1.0\r\n\r\n')]).events, [{ type: 'http.connect', host: '::1', port: 22 }]);
});

t.test('HTTP CONNECT refusals', async (t) => {
  const first = (text: string, max?: number): HttpConnectEvent | undefined => feedHttp([Buffer.from(text, 'latin1')], max).events[0];
  t.match(first('GET http://10.0.0.7/ HTTP/1.1\r\n'), { type: 'http.invalid', status: 405 }, 'judged at the end of the request line, before the headers');
  t.match(first('CONNECT 10.0.0.7 HTTP/1.1\r\n'), { status: 400, message: /needs host:port/ });
  t.match(first('CONNECT 10.0.0.7:99999 HTTP/1.1\r\n'), { status: 400, message: /not 1\.\.65535/ });
  t.match(first('CONNECT 10.0.0.7:80 HTTP/2.0\r\n'), { status: 505 });
  t.match(first('\x16\x03\x01'), { status: 400, message: /not an HTTP request/ }, 'TLS is refused on its first bytes');
  t.match(first(`CONNECT 10.0.0.7:80 HTTP/1.1\r\nX: ${'a'.repeat(100)}`, 64), { status: 431 }, 'over the limit without an end');
  t.match(first(`CONNECT 10.0.0.7:80 HTTP/1.1\r\nX: ${'a'.repeat(100)}\r\n\r\n`, 64), { status: 431 }, 'over the limit with an end');
  t.equal(first('CONNECT 10.0.0.7:80 HTTP/1.1\r\nHost: x\r\n'), undefined, 'waits for the empty line');
  const refusal = encodeRefusal(502, 'ERR_TARGET_OFFLINE: no\r\nsmuggled');
  t.equal(refusal.toString(), 'HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 33\r\nConnection: close\r\n\r\nERR_TARGET_OFFLINE: no smuggled\n'.replace('33', String(Buffer.byteLength('ERR_TARGET_OFFLINE: no smuggled\n'))));
});

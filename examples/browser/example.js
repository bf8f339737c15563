// The example page's script (examples/browser/index.html): connect to the relay that served the
// page, show the virtual IP, and echo every connection to virtual port 7.
import { connect } from '/alphanet.js';

const log = (line) => {
  document.querySelector('#log').textContent += `${line}\n`;
};

try {
  // No url: the relay that served this page (ws://<this host>/alphanet).
  const client = await connect();
  document.querySelector('#vip').textContent = client.virtualIp;
  document.querySelector('#try').textContent = `alphanet nc ${client.virtualIp} 7`;
  log(`connected to ${client.relay} as ${client.virtualIp}`);
  const server = await client.listen(7);
  for await (const conn of server) {
    const peer = `${conn.remoteAddress}:${conn.remotePort}`;
    log(`${peer} connected`);
    (async () => {
      let bytes = 0;
      // Echo: every chunk back as it comes; the peer's end ends ours.
      for await (const chunk of conn) {
        bytes += chunk.length;
        await conn.send(chunk);
      }
      await conn.end();
      log(`${peer} done, echoed ${bytes} bytes`);
    })().catch((error) => log(`${peer}: ${error.message}`));
  }
} catch (error) {
  document.querySelector('#vip').textContent = 'not connected';
  log(`error: ${error.message}`);
}

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import t from 'tap';

t.test('examples/echo.ts runs and prints the echo', async (t) => {
  const script = fileURLToPath(new URL('../../examples/echo.ts', import.meta.url));
  const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script], { timeout: 20_000 });
  t.match(stdout, /^10\.0\.\d+\.\d+ echoed: hello from 10\.0\.\d+\.\d+\n$/);
});

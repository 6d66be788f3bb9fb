import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { useBuildRoot } from '../helpers/build-root.js';
import { CLI, tsbuild } from '../helpers/cli.js';
import { HAVE_TMUX, withTmux } from '../helpers/tmux.js';

/** `tsbuild run -it`: a real pseudo-terminal (tmux) on the caller's side, runc's pty in the container. */
const test = suite('integration/run-tty');
const env = useBuildRoot(test, 'runtty');

test('run -it: the command has a terminal of the caller\'s size, reads typed input, and its exit code comes back', async () => {
  if (!HAVE_TMUX) {
    console.log('skipped: tmux is not installed');
    return;
  }
  const script = 'tty; stty size; echo TERM=$TERM; read line; echo got:$line; exit 3';
  const cmd = `${process.execPath} ${CLI} --root ${env.root} run -it busybox -- sh -c '${script}'; echo EXIT=$?; sleep 60`;
  await withTmux(cmd, { width: 100, height: 30 }, async (tty) => {
    await tty.waitFor(/TERM=/);
    await tty.send('typed-line', 'Enter');
    const screen = await tty.waitFor(/EXIT=\d+/);
    assert.match(screen, /^\/dev\/pts\/0$/m, screen);
    assert.match(screen, /^30 100$/m, 'the window size of the caller\'s terminal');
    assert.match(screen, /^TERM=xterm$/m);
    assert.match(screen, /^got:typed-line$/m);
    assert.match(screen, /^EXIT=3$/m);
  });
});

test('run -t without a terminal is a usage error', async () => {
  const r = await tsbuild(['--root', env.root, 'run', '-t', 'busybox', '--', 'true']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /-t, --tty: the input device is not a TTY/);
});

test.run();

"""``python -m srprune_basicsr`` for the tests, without paying its start-up on every call.

Importing torch, torchvision, basicsr and the plugin takes about 4.5 s of CPU, and the suite runs
the command a few hundred times. This server imports them once, then forks one child per command:
the child sets the command's working directory, environment and standard streams, and runs the
package's ``__main__`` as ``python -m srprune_basicsr`` does (``runpy``, so spawned workers
re-import the same main module). What differs from a fresh process is only what was imported
before the command started, so ``conftest.run_cli`` sends a command here only when nothing read at
import time differs: no fix switched off, the environment the server started with, no launcher.

Protocol (one JSON object per line): the client writes ``{args, cwd, env, stdout, stderr, status}``;
the server replies ``{pid}`` and, when the child ends, writes ``{"returncode": N}`` to ``status``
(negative: killed by that signal, as ``subprocess`` reports it). ``SRPRUNE_TEST_SUBPROCESS=1`` makes
``run_cli`` start a fresh process for every command instead.
"""

from __future__ import annotations

import json
import os
import sys
import threading


def _run_child(request: dict) -> None:
    """In the forked child: become the command, then exit with its code (never returns)."""
    import atexit
    import runpy
    import traceback

    code: int = 1
    try:
        os.setsid()  # its own process group: a timeout kills its workers too
        for fd, path, flags in ((0, os.devnull, os.O_RDONLY), (1, request['stdout'], os.O_WRONLY | os.O_CREAT),
                                (2, request['stderr'], os.O_WRONLY | os.O_CREAT)):
            os.dup2(os.open(path, flags, 0o644), fd)
        os.chdir(request['cwd'])
        os.environ.clear()
        os.environ.update(request['env'])
        sys.argv = ['srprune_basicsr', *request['args']]  # runpy sets argv[0] to __main__.py's path
        sys.path[0] = request['cwd']  # python -m puts the working directory first on the path
        try:
            runpy.run_module('srprune_basicsr', run_name='__main__', alter_sys=True)
            code = 0
        except SystemExit as exit_:
            if exit_.code is None or isinstance(exit_.code, int):
                code = exit_.code or 0
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001  (as the interpreter does: the traceback, exit 1)
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001,S110  (a closed stream: nothing left to write)
                pass
        os._exit(code)


def _report(pid: int, status_path: str) -> None:
    _, status = os.waitpid(pid, 0)
    tmp = f'{status_path}.tmp'
    with open(tmp, 'w') as f:
        json.dump({'returncode': os.waitstatus_to_exitcode(status)}, f)
    os.replace(tmp, status_path)


def serve() -> None:
    """Import everything a command imports, then fork a child per request read from stdin."""
    import srprune_basicsr  # noqa: F401,I001  (first: plugs in torch, basicsr, the fixes, the registries)
    import srprune_basicsr.cli  # noqa: F401  (not __main__: runpy runs that afresh for each command)
    import basicsr.test  # noqa: F401
    import basicsr.train  # noqa: F401

    replies = sys.stdout
    for line in sys.stdin:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _run_child(request)
        threading.Thread(target=_report, args=(pid, request['status']), daemon=True).start()
        replies.write(json.dumps({'pid': pid}) + '\n')
        replies.flush()


if __name__ == '__main__':
    serve()

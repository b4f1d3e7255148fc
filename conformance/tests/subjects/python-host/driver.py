#!/usr/bin/env python3
"""Driver for the Python host: the `rpcplugin-host-driver/1` contract (spec 07, section 7.2).

Commands arrive as JSON lines on standard input; each runs in a thread of its own (DRV-3);
replies and events leave as JSON lines on standard output, one write per line under a lock
(DRV-1).  Diagnostics go to standard error.

Options:
  --fixed-start-timeout[=MS]  ignore start_timeout_ms and always use START_TIMEOUT (3000 ms),
                         or MS.  This breaks DRV-5; the contract has no way to declare it.
  --gob8-ids             define gob types with GOB-8's fixed ids 65/66/67 instead of
                         numbering them per gob stream in first-use order.
  --assemble-messages    count the bytes of a gob message being assembled as read (see
                         host.WHOLE_MESSAGE_ACCOUNTING), so that messages up to 4 MiB pass (GOB-15).
  --no-honour            do not pass stop_grace_ms, deactivate_timeout_ms, restart_delay_max_ms
                         and stable_period_ms on (DRV-6 is a SHOULD).
"""

import json
import os
import sys
import threading

sys.dont_write_bytecode = True          # leave no __pycache__ next to the sources
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import host  # noqa: E402

HOST_NAME = "python-host 0.1.0 (independent implementation)"

out_lock = threading.Lock()
supervisors: dict = {}
sup_lock = threading.Lock()
workers: set = set()
workers_lock = threading.Lock()

FIXED_START_TIMEOUT = None
for _arg in sys.argv[1:]:
    if _arg == "--fixed-start-timeout":
        FIXED_START_TIMEOUT = host.START_TIMEOUT
    elif _arg.startswith("--fixed-start-timeout="):
        FIXED_START_TIMEOUT = int(_arg.split("=", 1)[1]) / 1000.0
HONOUR = "--no-honour" not in sys.argv[1:]
if "--assemble-messages" in sys.argv[1:]:
    host.WHOLE_MESSAGE_ACCOUNTING = False
if "--gob8-ids" in sys.argv[1:]:
    host.FIXED_TYPE_IDS = True


def send(obj: dict) -> None:
    """DRV-1: one JSON object per line, one write, never mixed with another message."""
    data = (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
    with out_lock:
        view = memoryview(data)
        while view:
            try:
                n = os.write(1, view)
            except InterruptedError:
                continue
            except OSError:
                return                     # the harness went away; nothing to tell
            view = view[n:]


def event_sink(name: str):
    def emit(event: str, **fields) -> None:           # DRV-10
        msg = {"event": event, "plugin": name}
        msg.update(fields)
        send(msg)
    return emit


def ms(cmd: dict, key: str, default: float) -> float:
    v = cmd.get(key)
    if isinstance(v, int) and not isinstance(v, bool) and v > 0:
        return v / 1000.0
    return default


def get_sup(cmd: dict):
    name = cmd.get("plugin")
    if not isinstance(name, str) or not name:
        raise ValueError("missing plugin name")
    with sup_lock:
        sup = supervisors.get(name)
    if sup is None:
        raise ValueError("no plugin named %s" % name)
    return sup


def do_start(cmd: dict) -> dict:
    name, bundle = cmd.get("plugin"), cmd.get("bundle")
    if not isinstance(name, str) or not name or not isinstance(bundle, str) or not bundle:
        raise ValueError("start needs plugin and bundle")
    start_timeout = FIXED_START_TIMEOUT or ms(cmd, "start_timeout_ms", host.START_TIMEOUT)
    stop_grace = ms(cmd, "stop_grace_ms", host.STOP_GRACE) if HONOUR else host.STOP_GRACE
    deact = ms(cmd, "deactivate_timeout_ms", host.DEACTIVATE_TIMEOUT) if HONOUR else host.DEACTIVATE_TIMEOUT
    # DRV-6: the backoff settings, which the harness sends only to its LIFE-9 and LIFE-10 cases.
    delay_max = ms(cmd, "restart_delay_max_ms", host.RESTART_DELAY_MAX) if HONOUR else host.RESTART_DELAY_MAX
    stable = ms(cmd, "stable_period_ms", host.STABLE_PERIOD) if HONOUR else host.STABLE_PERIOD
    with sup_lock:
        old = supervisors.get(name)
        if old is not None and old.status()[0] not in ("stopped", "failed"):
            raise ValueError("plugin %s is already in use" % name)
        sup = host.Supervisor(name, bundle, start_timeout, stop_grace, deact, event_sink(name),
                              restart_delay_max=delay_max, stable_period=stable)
        supervisors[name] = sup
    return {"pid": sup.start()}                        # DRV-5


def do_stop(cmd: dict) -> dict:
    exit_info, killed = get_sup(cmd).stop()            # DRV-8
    return {"exit": exit_info, "killed": killed}


def do_status(cmd: dict) -> dict:
    state, pid = get_sup(cmd).status()                 # DRV-9
    return {"state": state, "pid": pid}


def do_activate(cmd: dict) -> dict:
    # DRV-7 (draft.2): config is a string holding the JSON text, served byte for byte.
    if not isinstance(cmd.get("config"), str):
        raise ValueError("activate needs config, a JSON text in a string")
    get_sup(cmd).activate(cmd["config"].encode("utf-8"))
    return {}


def do_deactivate(cmd: dict) -> dict:
    get_sup(cmd).deactivate()                          # DRV-7
    return {}


def do_hello(cmd: dict) -> dict:                       # DRV-4
    # DRV-4 (draft.2): start_timeout_ms is honoured unless fixed, and then its value reported.
    honours = (["stop_grace_ms", "deactivate_timeout_ms", "restart_delay_max_ms",
                "stable_period_ms"] if HONOUR else [])
    reply = {"protocol": "rpcplugin-host-driver/1", "host": HOST_NAME, "events": True}
    if FIXED_START_TIMEOUT:
        reply["defaults"] = {"start_timeout_ms": int(FIXED_START_TIMEOUT * 1000)}
    else:
        honours = ["start_timeout_ms"] + honours
    reply["honours"] = honours
    return reply


HANDLERS = {"hello": do_hello, "start": do_start, "stop": do_stop, "status": do_status,
            "activate": do_activate, "deactivate": do_deactivate}


def run_command(cmd: dict) -> None:
    cid = cmd["id"]
    try:
        result = HANDLERS[cmd["cmd"]](cmd)
        reply = {"id": cid, "ok": True}
        reply.update(result)
    except Exception as e:                             # DRV-2: every command gets one reply
        text = str(e) or e.__class__.__name__
        reply = {"id": cid, "ok": False, "error": text}
    send(reply)


def stop_everything() -> None:
    """DRV-11: stop every supervisor (in parallel), then wait for the commands in progress."""
    with sup_lock:
        sups = list(supervisors.values())
    threads = [threading.Thread(target=s.stop, daemon=True) for s in sups]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with workers_lock:
        pending = list(workers)
    for t in pending:
        if t is not threading.current_thread():
            t.join(timeout=30)


def spawn(cmd: dict) -> None:
    def work():
        try:
            run_command(cmd)
        finally:
            with workers_lock:
                workers.discard(threading.current_thread())
    t = threading.Thread(target=work, daemon=True)
    with workers_lock:
        workers.add(t)
    t.start()


def main() -> None:
    host.close_inherited_descriptors()                 # TRANS-4
    for raw in sys.stdin.buffer:
        line = raw.strip()
        if not line:
            continue
        try:
            cmd = json.loads(line)
        except ValueError as e:
            host.log("driver: not JSON: %r (%s)" % (line[:200], e))
            continue
        cid = cmd.get("id") if isinstance(cmd, dict) else None
        if not isinstance(cid, int) or isinstance(cid, bool) or cid < 1:
            host.log("driver: command without a usable id: %r" % line[:200])
            continue
        name = cmd.get("cmd")
        if name == "quit":
            stop_everything()
            send({"id": cid, "ok": True})
            sys.stderr.flush()
            os._exit(0)
        if name not in HANDLERS:
            send({"id": cid, "ok": False, "error": "unknown command %r" % (name,)})
            continue
        spawn(cmd)                                     # DRV-3
    stop_everything()                                  # end of file: as quit, without a reply
    os._exit(0)


if __name__ == "__main__":
    main()

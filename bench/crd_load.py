#!/usr/bin/env python3
"""Creates/s of custom resources against ConfigMaps, for bench/crd.sh (standard library only;
the HTTPS client and server sampling of bench/apiserver_load.py).

One server; a CustomResourceDefinition whose schema has a default, bounds, an enum, a pattern
and a CEL rule is installed first. Then ROUNDS rounds, each timing CLIENTS threads (one
keep-alive connection each) creating ConfigMaps for SECONDS, then Widgets for SECONDS (the
order alternates between rounds), the objects of equal size (~300 bytes of payload). Prints
lines: each round's rates and ratio, the median rates and the median of the rounds' ratios.

usage: crd_load.py --data DIR --pid PID [--clients 8] [--seconds 4] [--rounds 5]
"""
import argparse
import os
import statistics
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from apiserver_load import Client, Config, ensure_namespace  # noqa: E402

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.bench.skiff.dev"},
    "spec": {
        "group": "bench.skiff.dev", "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {
                "type": "object", "required": ["size"],
                "x-kubernetes-validations": [{"rule": "self.size <= self.limit", "message": "size above limit"}],
                "properties": {
                    "size": {"type": "integer", "minimum": 1},
                    "limit": {"type": "integer", "default": 100},
                    "color": {"type": "string", "enum": ["red", "blue"]},
                    "owner": {"type": "string", "pattern": "^[a-z0-9-]+$", "maxLength": 63},
                    "note": {"type": "string"},
                }}}}},
        }],
    },
}

NOTE = "x" * 240


def configmap(name, i):
    return ("/api/v1/namespaces/{ns}/configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
             "data": {"size": str(i % 50 + 1), "color": "red", "owner": "team-a", "note": NOTE}})


def widget(name, i):
    return ("/apis/bench.skiff.dev/v1/namespaces/{ns}/widgets",
            {"apiVersion": "bench.skiff.dev/v1", "kind": "Widget", "metadata": {"name": name},
             "spec": {"size": i % 50 + 1, "color": "red", "owner": "team-a", "note": NOTE}})


def rate(cfg, make, ns, clients, seconds):
    conns = [Client(cfg) for _ in range(clients)]
    for c in conns:
        c.request("GET", f"/api/v1/namespaces/{ns}")
    counts = [0] * clients
    errors = []
    barrier = threading.Barrier(clients + 1)
    end = {}

    def work(t):
        try:
            barrier.wait()
            i = 0
            while time.monotonic() < end["at"]:
                path, body = make(f"o-{t}-{i}", i)
                conns[t].request("POST", path.format(ns=ns), body, expect=(201,))
                counts[t] += 1
                i += 1
        except BaseException as e:  # noqa: BLE001
            errors.append(e)
        finally:
            conns[t].close()

    threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in range(clients)]
    for th in threads:
        th.start()
    end["at"] = time.monotonic() + seconds
    t0 = time.monotonic()
    barrier.wait()
    for th in threads:
        th.join()
    if errors:
        raise errors[0]
    return sum(counts) / (time.monotonic() - t0)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--pid", required=True, type=int)
    p.add_argument("--out")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    cfg = Config(args)
    c = Client(cfg)
    c.request("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD, expect=(201, 409))
    for _ in range(200):
        status, data = c.request("GET", "/apis/bench.skiff.dev/v1", expect=(200, 404))
        if status == 200 and b'"widgets"' in data:
            break
        time.sleep(0.05)
    cms, crs = [], []
    for r in range(args.rounds):
        for kind in (("cm", "cr") if r % 2 == 0 else ("cr", "cm")):
            ns = f"{kind}-{r}"
            ensure_namespace(c, ns)
            if kind == "cm":
                cms.append(rate(cfg, configmap, ns, args.clients, args.seconds))
            else:
                crs.append(rate(cfg, widget, ns, args.clients, args.seconds))
    c.close()
    for r, (a, b) in enumerate(zip(cms, crs)):
        print(f"round_{r} configmaps/s {a:.0f} widgets/s {b:.0f} ratio {b / a:.2f}")
    print(f"median configmaps/s {statistics.median(cms):.0f}")
    print(f"median widgets/s {statistics.median(crs):.0f}")
    # Each round's pair ran back to back: the median of their ratios is what noise spares least.
    print(f"median ratio {statistics.median(b / a for a, b in zip(cms, crs)):.2f}")


if __name__ == "__main__":
    main()

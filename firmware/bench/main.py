# Entry point on the tester board (MicroPython runs main.py at boot): the pin map from
# bench_pins.json, then the line protocol on the USB serial (docs/protocol.md, "The tester board").
import json
import select
import sys

import otarig_bench


def main():
    with open("bench_pins.json") as fh:
        pins = json.load(fh)
    companion = otarig_bench.BenchCompanion(pins, sys.platform)
    poller = select.poll()
    poller.register(sys.stdin, select.POLLIN)
    otarig_bench.serve(companion, sys.stdin, sys.stdout, poller)


main()

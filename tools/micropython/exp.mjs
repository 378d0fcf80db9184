import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";
let out = "";
const mp = await loadMicroPython({ stdout: (l) => { out += l + "\n"; }, stderr: (l)=>{out += "ERR "+l+"\n";} });
mp.FS.mkdirTree("/lib");
mp.FS.writeFile("/lib/time.py", "def ticks_ms():\n    return 12345\n");
try {
mp.runPython(`
import sys, micropython
print(sys.path, sys.version, sys.implementation)
print(dir(micropython))
import time
print('time', time.ticks_ms(), time)
import json
print(json.dumps({"ev": "reply", "t": 1, "id": 2, "cmd": "x", "ok": True, "error": "e"}))
class C:
    def __init__(self):
        self.n = 0
        self.d = {"a": 1}
        self.ref = self.h
    def h(self, p):
        self.n += 1
        x = self.d["a"]
        micropython.schedule(self.ref2, self.n)
    def ref2(self, a):
        print("sched ran", a)
c = C()
c.ref2 = c.ref2
h = c.h
micropython.heap_lock()
try:
    h(None)
    ok = True
except MemoryError as e:
    ok = e
micropython.heap_unlock()
print("heap-locked call:", ok)
print("after call, before loop")
for i in range(2):
    pass
print("after loop")
micropython.heap_lock()
try:
    l = [1, 2]
    r = "no error"
except MemoryError:
    r = "MemoryError"
micropython.heap_unlock()
print("alloc under lock:", r)
try:
    json.loads("{bad")
except ValueError as e:
    print("VE", e)
try:
    json.loads("")
except ValueError as e:
    print("VE2", e)
print(json.loads('{"a": 1} x') if 0 else 0)
raise KeyError("boom")
`);
} catch (e) { out += "JSERR " + e.constructor.name + ": " + e.message + "\n"; }
console.log(out);

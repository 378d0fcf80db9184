// Run Python code on real MicroPython (the 1.27 WebAssembly port, pinned in package-lock.json).
//
//   node tools/micropython/run.mjs [-c CODE] FILE[=NAME] ...
//
// Each FILE (a .py source or an .mpy compiled by mpy-cross) is written to /lib (on sys.path) as
// its own name, or as NAME when given (tests/bench_companion/fakemachine.py=machine.py: the port
// has no `machine` module). Then CODE runs (the files are compiled or loaded when imported).
// Python's output goes to stdout, a Python exception's traceback to stderr with exit code 1;
// usage errors exit 2.
import { readFileSync } from "node:fs";
import { basename } from "node:path";

import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

function usage(msg) {
  process.stderr.write(`run.mjs: ${msg}\nusage: node run.mjs [-c CODE] FILE[=NAME] ...\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
let code = "";
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "-c") {
    if (i + 1 >= args.length) usage("-c needs the code");
    code = args[++i];
  } else {
    const [path, as] = args[i].split("=");
    const name = as || basename(path);
    if (!/^[A-Za-z_][A-Za-z0-9_]*\.m?py$/.test(name)) usage(`not a module file name: ${name}`);
    let data;
    try {
      data = readFileSync(path);
    } catch (err) {
      usage(`cannot read ${path}: ${err.message}`);
    }
    files.push([name, data]);
  }
}

const out = (line) => process.stdout.write(line + "\n");
const mp = await loadMicroPython({ stdout: out, stderr: (line) => process.stderr.write(line + "\n") });
mp.FS.mkdirTree("/lib");
for (const [name, data] of files) mp.FS.writeFile(`/lib/${name}`, data);
try {
  mp.runPython(code);
} catch (err) {
  // A Python exception arrives as a JS PythonError whose message is the traceback.
  process.stderr.write((err && err.message ? err.message : String(err)).trimEnd() + "\n");
  process.exitCode = 1;
}

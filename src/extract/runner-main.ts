/**
 * The context runner's entry point: it starts loading the HDF5 library (h5wasm: parsing its 4 MB module and compiling
 * its WebAssembly, which V8 does on background threads) before anything else, and only then loads the runner
 * itself (runner.ts), so that the compile overlaps the runner's own module loading instead of following it.
 * Every job opens a run, and a fresh runner's first job otherwise waits for the library (issue 13).
 */
import { loadH5wasm } from "../h5/h5wasm.js";

void loadH5wasm().catch(() => {});
await import("./runner.js");

/** h5wasm's Node build (reads real files from disk), loaded on first use and initialised once per process. */
type H5wasm = typeof import("h5wasm/node").default;

let loading: Promise<H5wasm> | undefined;

export function loadH5wasm(): Promise<H5wasm> {
  loading ??= import("h5wasm/node").then(async (m) => {
    const Module = await m.default.ready;
    // Without it HDF5 failures only print to stderr and return null or garbage (e.g. a missing filter); now they throw.
    Module.activate_throwing_error_handler();
    return m.default;
  });
  return loading;
}

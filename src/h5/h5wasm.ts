/** h5wasm's Node build (reads real files from disk), initialised once per process. */
import h5wasm from "h5wasm/node";

let ready: Promise<unknown> | undefined;

export async function loadH5wasm(): Promise<typeof h5wasm> {
  ready ??= h5wasm.ready;
  await ready;
  return h5wasm;
}

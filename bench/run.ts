/**
 * `npm run bench [-- NAME…]`: runs the benchmarks (all, or those named) and prints their figures.
 * Each benchmark compares within one run, so machine speed cancels out of its ratios.
 */
const all: Record<string, () => Promise<{ run: () => Promise<void> }>> = {
  eval: () => import('./eval.js'),
  store: () => import('./store.js'),
  packages: () => import('./packages.js'),
  build: () => import('./build.js'),
  image: () => import('./image.js'),
  vm: () => import('./vm.js'),
  switch: () => import('./switch.js'),
};

const wanted = process.argv.slice(2);
for (const name of wanted.length ? wanted : Object.keys(all)) {
  const load = all[name];
  if (!load) {
    console.error(`unknown benchmark \`${name}'; known: ${Object.keys(all).join(', ')}`);
    process.exit(2);
  }
  console.log(`== ${name}`);
  await (await load()).run();
}

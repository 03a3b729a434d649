// Builds the player into ONE self-contained HTML file that the Python package ships:
//   node build.mjs                    writes ../server/ccapi_suno_mcp/player/player.html
//   node build.mjs --out FILE         writes the player to FILE instead (the test compares it with the shipped one)
//   node build.mjs --host DIR         also builds the test host page (host/) into DIR
// The output depends only on src/, this script and the locked packages: no timestamps, no absolute paths.
import { mkdir, readFile, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build, transform } from "esbuild";

const here = path.dirname(fileURLToPath(import.meta.url));
const shipped = path.join(here, "..", "server", "ccapi_suno_mcp", "player", "player.html");
const packageJson = JSON.parse(await readFile(path.join(here, "package.json"), "utf8"));

function option(name) {
  const at = process.argv.indexOf(name);
  return at === -1 ? undefined : process.argv[at + 1];
}

// zod's namespace re-export of every locale defeats tree shaking; the SDK only ever uses the default (en).
const onlyEnglishLocale = {
  name: "only-english-zod-locale",
  setup(builder) {
    builder.onLoad({ filter: /[\\/]zod[\\/]v4[\\/]locales[\\/]index\.js$/ }, () => ({
      contents: 'export { default as en } from "./en.js";',
      loader: "js",
    }));
  },
};

async function bundle(entry, extra = {}) {
  const result = await build({
    entryPoints: [path.join(here, entry)],
    absWorkingDir: here,
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    platform: "browser",
    legalComments: "none",
    charset: "utf8",
    write: false,
    logLevel: "warning",
    plugins: [onlyEnglishLocale],
    ...extra,
  });
  return result.outputFiles[0].text;
}

// Inline code must not close its element early or open an HTML comment (script data escape).
function inlineSafe(code, element) {
  if (new RegExp(`</${element}|<!--`, "i").test(code)) {
    throw new Error(`the bundled ${element} contains </${element} or <!--, which cannot be inlined`);
  }
  return code;
}

async function buildPlayer() {
  const script = await bundle("src/player.ts", {
    define: { __PLAYER_VERSION__: JSON.stringify(packageJson.version) },
  });
  const css = await transform(await readFile(path.join(here, "src", "player.css"), "utf8"), {
    loader: "css",
    minify: true,
    target: "chrome120",
  });
  const template = await readFile(path.join(here, "src", "player.html"), "utf8");
  const html = template
    .replace("/*STYLE*/", () => inlineSafe(css.code.trim(), "style"))
    .replace("/*SCRIPT*/", () => inlineSafe(script.trim(), "script"));
  return `<!-- Built by player/build.mjs from player/src; do not edit by hand. -->\n${html}`;
}

const out = option("--out") ?? shipped;
await mkdir(path.dirname(out), { recursive: true });
await writeFile(out, await buildPlayer(), "utf8");

const hostDir = option("--host");
if (hostDir) {
  await mkdir(hostDir, { recursive: true });
  for (const name of ["host", "sandbox"]) {
    await writeFile(path.join(hostDir, `${name}.js`), await bundle(`host/${name}.ts`), "utf8");
    await writeFile(path.join(hostDir, `${name}.html`), await readFile(path.join(here, "host", `${name}.html`)));
  }
}

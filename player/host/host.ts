// A minimal MCP Apps host for the browser test, built on the host side of @modelcontextprotocol/ext-apps (its
// AppBridge) like the package's basic-host example: an MCP client over streamable HTTP (same origin, /mcp) that
// negotiates the UI extension, and for each call of a tool linked to a ui:// view, that view in a double-iframe
// sandbox on another origin. The test drives it through `window.host`.

import {
  AppBridge,
  getToolUiResourceUri,
  PostMessageTransport,
  RESOURCE_MIME_TYPE,
  type McpUiHostContext,
  type McpUiResourceCsp,
  type McpUiStyles,
} from "@modelcontextprotocol/ext-apps/app-bridge";
import {
  Client,
  StreamableHTTPClientTransport,
  type CallToolResult,
  type JSONRPCMessage,
  type Tool,
} from "@modelcontextprotocol/client";

const EXTENSION_ID = "io.modelcontextprotocol/ui";
const HOST_INFO = { name: "ccapi-suno-test-host", version: "1.0.0" };
// A host passes any subset of the standard variables; these few are enough to see that the view follows them.
const THEMES: Record<"light" | "dark", Partial<McpUiStyles>> = {
  light: {
    "--color-background-primary": "rgb(250, 250, 245)",
    "--color-background-secondary": "rgb(238, 240, 232)",
    "--color-text-primary": "rgb(24, 26, 20)",
  },
  dark: {
    "--color-background-primary": "rgb(20, 22, 30)",
    "--color-background-secondary": "rgb(32, 35, 48)",
    "--color-text-primary": "rgb(236, 238, 245)",
  },
};

interface View {
  id: string;
  iframe: HTMLIFrameElement;
  bridge: AppBridge;
}

const client = new Client(HOST_INFO, {
  capabilities: { extensions: { [EXTENSION_ID]: { mimeTypes: [RESOURCE_MIME_TYPE] } } },
});
const tools = new Map<string, Tool>();
const views: View[] = [];
const traffic: string[] = []; // every message between this page and a view, both ways
let theme: "light" | "dark" = "dark";

class RecordingTransport extends PostMessageTransport {
  override async send(message: JSONRPCMessage): Promise<void> {
    traffic.push(JSON.stringify(message));
    return super.send(message);
  }
}

window.addEventListener("message", (event) => traffic.push(JSON.stringify(event.data)));

function hostContext(tool: Tool, width: number): McpUiHostContext {
  return {
    theme,
    styles: { variables: THEMES[theme] as McpUiStyles },
    toolInfo: { tool },
    displayMode: "inline",
    availableDisplayModes: ["inline"],
    containerDimensions: { maxHeight: 4000, width },
    platform: "web",
    locale: "en-US",
  };
}

async function readView(uri: string): Promise<{ html: string; csp?: McpUiResourceCsp }> {
  const { contents } = await client.readResource({ uri });
  const [content] = contents;
  if (!content || content.mimeType !== RESOURCE_MIME_TYPE || !("text" in content)) {
    throw new Error(`${uri} is not an MCP App view`);
  }
  const ui = (content._meta as { ui?: { csp?: McpUiResourceCsp } } | undefined)?.ui;
  return { html: content.text, csp: ui?.csp };
}

function sandboxReady(iframe: HTMLIFrameElement): Promise<void> {
  return new Promise((resolve) => {
    const listener = (event: MessageEvent): void => {
      if (event.source === iframe.contentWindow && event.data?.method === "ui/notifications/sandbox-proxy-ready") {
        window.removeEventListener("message", listener);
        resolve();
      }
    };
    window.addEventListener("message", listener);
  });
}

/** Call a tool as the model would; when it links a view, show it. Resolves once the view has the result. */
async function run(name: string, args: Record<string, unknown>, width = 640): Promise<{ view?: string; result: CallToolResult }> {
  const tool = tools.get(name);
  if (!tool) {
    throw new Error(`unknown tool ${name}`);
  }
  const resultPromise = client.callTool({ name, arguments: args }) as Promise<CallToolResult>;
  const uri = getToolUiResourceUri(tool);
  if (!uri) {
    return { result: await resultPromise };
  }
  const { html, csp } = await readView(uri);
  const id = `view-${views.length + 1}`;
  const iframe = document.createElement("iframe");
  iframe.id = id;
  iframe.title = `${name} view`;
  iframe.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
  iframe.style.width = `${width}px`;
  document.getElementById("chat")?.append(iframe);
  const ready = sandboxReady(iframe);
  // The sandbox proxy lives on another origin (localhost instead of 127.0.0.1); its CSP comes from the view's.
  const sandbox = new URL("/sandbox.html", location.href);
  sandbox.hostname = "localhost";
  sandbox.searchParams.set("csp", JSON.stringify(csp ?? {}));
  iframe.src = sandbox.href;
  await ready;
  const bridge = new AppBridge(
    client,
    HOST_INFO,
    { openLinks: {}, serverTools: {}, serverResources: {}, logging: {} },
    { hostContext: hostContext(tool, width) },
  );
  bridge.onsizechange = ({ height }) => {
    if (height !== undefined) {
      iframe.style.height = `${height}px`;
    }
  };
  const initialized = new Promise<void>((resolve) => {
    bridge.oninitialized = () => resolve();
  });
  const window = iframe.contentWindow as Window;
  await bridge.connect(new RecordingTransport(window, window));
  await bridge.sendSandboxResourceReady({ html, csp });
  await initialized;
  views.push({ id, iframe, bridge });
  await bridge.sendToolInput({ arguments: args });
  const result = await resultPromise;
  await bridge.sendToolResult(result);
  return { view: id, result };
}

async function setTheme(next: "light" | "dark"): Promise<void> {
  theme = next;
  await Promise.all(views.map(({ bridge }) => bridge.sendHostContextChange({ theme, styles: { variables: THEMES[theme] as McpUiStyles } })));
}

async function setWidth(id: string, width: number): Promise<void> {
  const view = views.find((candidate) => candidate.id === id);
  if (view) {
    view.iframe.style.width = `${width}px`;
    await view.bridge.sendHostContextChange({ containerDimensions: { maxHeight: 4000, width } });
  }
}

async function start(): Promise<void> {
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", location.href)));
  for (const tool of (await client.listTools()).tools) {
    tools.set(tool.name, tool);
  }
}

const host = {
  ready: false,
  error: "",
  run,
  setTheme,
  setWidth,
  traffic: () => [...traffic],
  callTool: (name: string, args: Record<string, unknown>) => client.callTool({ name, arguments: args }),
};
(window as unknown as { host: typeof host }).host = host;
start().then(
  () => {
    host.ready = true;
  },
  (error: unknown) => {
    host.error = String(error);
  },
);

// The sandbox proxy of the test host (the outer iframe, on its own origin), as the MCP Apps spec describes it:
// it tells the host it is ready, loads the view's HTML into an inner iframe when the host sends it, and relays
// every other message both ways. The view's CSP is the HTTP header the test's server puts on this page (from
// ?csp=), which the inner document inherits.

const hostOrigin = new URL(document.referrer).origin;
const ownOrigin = location.origin;
const inner = document.createElement("iframe");
inner.setAttribute("sandbox", "allow-scripts allow-same-origin allow-forms");
inner.title = "view";
document.body.append(inner);

window.addEventListener("message", (event: MessageEvent) => {
  if (event.source === window.parent) {
    if (event.origin !== hostOrigin) {
      return;
    }
    if (event.data?.method === "ui/notifications/sandbox-resource-ready") {
      const { html } = event.data.params as { html: string };
      const document = inner.contentDocument as Document;
      document.open();
      document.write(html);
      document.close();
      return;
    }
    inner.contentWindow?.postMessage(event.data, "*");
  } else if (event.source === inner.contentWindow && event.origin === ownOrigin) {
    window.parent.postMessage(event.data, hostOrigin);
  }
});

window.parent.postMessage({ jsonrpc: "2.0", method: "ui/notifications/sandbox-proxy-ready", params: {} }, hostOrigin);

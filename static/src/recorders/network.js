// Failed requests, recorded as rrweb plugin events beside the page: each fetch() and
// XMLHttpRequest that ends in a network error or an HTTP status of 400 or more, with its
// method, URL, status (0 when no answer came), error and duration in milliseconds. Requests
// the page aborts itself are not failures and are left out.
//
//   record({ emit, plugins: [getRecordNetworkPlugin()] })
//
// Events: { type: 6, data: { plugin: "replay/network@1", payload: { kind: "fetch" | "xhr",
// method, url, status, error?, duration } } }.
export const PLUGIN_NAME = "replay/network@1";

function absolute(url, win) {
  try {
    return new URL(String(url), win.location.href).href;
  } catch {
    return String(url);
  }
}

function describe(error) {
  return error && error.name ? `${error.name}: ${error.message}` : String(error);
}

function observeFetch(report, win) {
  const original = win.fetch;
  if (typeof original !== "function") return () => {};
  const recorded = function fetch(input, init) {
    const started = win.performance.now();
    const request = win.Request && input instanceof win.Request ? input : null;
    const method = String((init && init.method) || (request && request.method) || "GET").toUpperCase();
    const url = absolute(request ? request.url : input, win);
    const done = (status, error) =>
      report({ kind: "fetch", method, url, status, error, duration: Math.round(win.performance.now() - started) });
    return original.apply(win, arguments).then(
      (response) => {
        if (response.status >= 400) done(response.status);
        return response;
      },
      (error) => {
        if (!error || error.name !== "AbortError") done(0, describe(error));
        throw error;
      },
    );
  };
  win.fetch = recorded;
  return () => {
    if (win.fetch === recorded) win.fetch = original; // else someone wrapped ours: leave it
  };
}

function observeXhr(report, win) {
  const proto = win.XMLHttpRequest && win.XMLHttpRequest.prototype;
  if (!proto) return () => {};
  const { open, send } = proto;
  const requests = new WeakMap();
  proto.open = function (method, url) {
    requests.set(this, { method: String(method || "GET").toUpperCase(), url: absolute(url, win) });
    return open.apply(this, arguments);
  };
  proto.send = function () {
    const request = requests.get(this);
    if (request) {
      const started = win.performance.now();
      let failure = null;
      this.addEventListener("error", () => (failure = "network error"));
      this.addEventListener("timeout", () => (failure = "timeout"));
      this.addEventListener("abort", () => (failure = "abort"));
      this.addEventListener("loadend", () => {
        if (failure === "abort" || (!failure && this.status < 400)) return;
        report({
          kind: "xhr",
          ...request,
          status: failure ? 0 : this.status,
          error: failure || undefined,
          duration: Math.round(win.performance.now() - started),
        });
      });
    }
    return send.apply(this, arguments);
  };
  return () => {
    proto.open = open;
    proto.send = send;
  };
}

/** An rrweb record plugin for failed fetch and XHR requests. */
export function getRecordNetworkPlugin(options = {}) {
  return {
    name: PLUGIN_NAME,
    options,
    observer(callback, win) {
      const report = (payload) => {
        try {
          callback(payload);
        } catch {
          // Recording must never break the page's own request.
        }
      };
      const stops = [observeFetch(report, win), observeXhr(report, win)];
      return () => stops.forEach((stop) => stop());
    },
  };
}

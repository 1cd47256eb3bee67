/**
 * A loopback port where a TCP connect never completes: a real connect
 * timeout without a network. A listener with an accept queue of one is
 * opened on a worker thread whose event loop is then held still, so nothing
 * ever accepts; two connections fill the queue, and from then on the kernel
 * drops every SYN to that port, exactly as a firewall that drops packets
 * would. A client trying to connect waits until its own timeout.
 *
 * It relies on the Linux accept queue (a listener with backlog n holds n + 1
 * finished handshakes, then drops SYNs; gVisor does the same). It does not
 * simulate a slow network or a silent server: for a server that accepts and
 * never greets, use `ScriptedSmtpServer` with `silent()`.
 */
import * as net from "node:net"
import { Worker } from "node:worker_threads"

export interface StalledListener {
  readonly host: string
  readonly port: number
  /** Closes the filler connections and the listener, and ends the worker. */
  readonly close: () => Promise<void>
}

// The worker listens, reports its port, then blocks until the parent flips the flag.
const workerSource = `
const { workerData, parentPort } = require("node:worker_threads")
const net = require("node:net")
const flag = new Int32Array(workerData.flag)
const server = net.createServer()
server.once("error", (error) => parentPort.postMessage({ error: error.message }))
server.listen({ host: workerData.host, port: workerData.port, backlog: 1 }, () => {
  parentPort.postMessage({ port: server.address().port })
  Atomics.wait(flag, 0, 0)
  server.close()
  parentPort.close()
})
`

/** Starts a listener on `host` (and `port`, default a free one) whose connects never complete. */
export const startStalledListener = async (
  options: { readonly host?: string; readonly port?: number } = {},
): Promise<StalledListener> => {
  const host = options.host ?? "127.0.0.1"
  const flag = new Int32Array(new SharedArrayBuffer(4))
  const worker = new Worker(workerSource, {
    eval: true,
    workerData: { flag: flag.buffer, host, port: options.port ?? 0 },
  })
  const exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()))
  const release = async () => {
    Atomics.store(flag, 0, 1)
    Atomics.notify(flag, 0)
    await exited
  }

  const reply = await new Promise<{ port?: number; error?: string }>((resolve, reject) => {
    worker.once("message", resolve)
    worker.once("error", reject)
  })
  if (reply.port === undefined) {
    await release()
    throw new Error(`startStalledListener: cannot listen on ${host}: ${reply.error}`)
  }
  const port = reply.port

  // Two finished handshakes fill an accept queue of one; nothing will ever take them.
  const fillers: Array<net.Socket> = []
  try {
    for (let i = 0; i < 2; i++) {
      const socket = net.connect(port, host)
      fillers.push(socket)
      await new Promise<void>((resolve, reject) => {
        socket.once("connect", () => resolve())
        socket.once("error", reject)
      })
      // Reset when the listener closes; that is expected.
      socket.on("error", () => undefined)
    }
  } catch (cause) {
    for (const socket of fillers) socket.destroy()
    await release()
    throw cause
  }

  let closing: Promise<void> | undefined
  const close = (): Promise<void> => {
    closing ??= (async () => {
      for (const socket of fillers) socket.destroy()
      await release()
    })()
    return closing
  }
  return { host, port, close }
}

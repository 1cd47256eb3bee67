#!/usr/bin/env node
/**
 * `npm run bench`: how fast the transports send, and how much memory a large
 * message costs, against a local SMTP sink on loopback. It prints numbers and
 * asserts nothing.
 *
 * The sink is Postfix's `smtp-sink` when it is installed, else a minimal sink
 * of our own. Either runs in its own process, so that the memory measured is
 * the sending transport's alone. For each transport (raw, and nodemailer when
 * its package is built) it prints:
 *
 * - messages per second with 5 pooled connections (5 sends at a time on a
 *   pooled transport; a transport without a pool opens a connection per send);
 * - milliseconds per message with a new connection for each, one at a time;
 * - the peak RSS growth while sending one 100 MiB attachment streamed from a
 *   temporary file, in a fresh process, sampled every 5 ms during the send:
 *   "warm" after one pass of the message composer (core's, shared by every
 *   transport), so that V8's heap has reached its working size and what grows
 *   is the transport's own; "cold" with the composer's first pass inside the
 *   send.
 *
 * With Postfix's `smtp-source` installed, the same three runs are made with it
 * and the transports' numbers are shown as ratios of its numbers.
 *
 * Every loop is bounded by a count and a time limit; everything stays on
 * 127.0.0.1. It imports the built packages (`dist/`): run it through
 * `npm run bench`, which builds first.
 */
import { execFileSync, spawn } from "node:child_process"
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import * as net from "node:net"
import { tmpdir } from "node:os"
import { dirname, join } from "node:path"
import { Writable } from "node:stream"
import { pipeline } from "node:stream/promises"
import { fileURLToPath } from "node:url"

const root = join(dirname(fileURLToPath(import.meta.url)), "..")
const self = fileURLToPath(import.meta.url)

const pooledCount = 500
const pooledConcurrency = 5
const freshCount = 100
const runLimitMs = 30_000
const attachmentMiB = 100
const host = "127.0.0.1"

// ---------------------------------------------------------------------------------------------
// The sink

/** Our own sink, scripts/smtp-sink.mjs: takes every message, keeps none, prints its port. */
const sinkScript = fileURLToPath(new URL("smtp-sink.mjs", import.meta.url))

const commandPath = (name) => {
  try {
    return (
      execFileSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" }).trim() || undefined
    )
  } catch {
    return undefined
  }
}

const freePort = () =>
  new Promise((resolve, reject) => {
    const probe = net.createServer()
    probe.once("error", reject)
    probe.listen(0, host, () => {
      const { port } = probe.address()
      probe.close(() => resolve(port))
    })
  })

const canConnect = (port) =>
  new Promise((resolve) => {
    const socket = net.connect({ host, port })
    socket.once("connect", () => {
      socket.destroy()
      resolve(true)
    })
    socket.once("error", () => resolve(false))
  })

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Starts Postfix's smtp-sink if it is installed and starts; else our own. */
const startSink = async () => {
  const smtpSink = commandPath("smtp-sink")
  if (smtpSink !== undefined) {
    const port = await freePort()
    const asRoot = process.getuid?.() === 0
    // smtp-sink refuses to run as root unless told which user to become.
    const args = [...(asRoot ? ["-u", "nobody"] : []), `${host}:${port}`, "256"]
    const child = spawn(smtpSink, args, { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    child.stderr.on("data", (chunk) => (stderr += chunk))
    for (let i = 0; i < 50 && child.exitCode === null; i += 1) {
      if (await canConnect(port)) return { name: `Postfix smtp-sink (${smtpSink})`, port, child }
      await sleep(100)
    }
    child.kill()
    console.log(`smtp-sink did not start (${stderr.trim() || "no output"}); using our own sink`)
  }
  const child = spawn(process.execPath, [sinkScript], { stdio: ["ignore", "pipe", "inherit"] })
  const port = await new Promise((resolve, reject) => {
    child.once("exit", (code) => reject(new Error(`the sink exited with ${code}`)))
    child.stdout.once("data", (chunk) => resolve(Number(String(chunk).trim())))
  })
  return { name: "the bench's own minimal sink (child process)", port, child }
}

// ---------------------------------------------------------------------------------------------
// The transports

/** The transports whose packages are built, and why the others are missing. */
const loadTransports = async () => {
  const transports = []
  const missing = []
  const candidates = [
    {
      name: "raw",
      dist: "packages/transport-raw/dist/index.js",
      load: async () => {
        const { RawTransport } = await import("@spoc-mail/transport-raw")
        return {
          fresh: () => RawTransport.make(),
          pooled: (options) => RawTransport.makePooled(options),
        }
      },
    },
    {
      name: "nodemailer",
      dist: "packages/transport-nodemailer/dist/index.js",
      load: async () => {
        const { NodemailerTransport } = await import("@spoc-mail/transport-nodemailer")
        return { fresh: () => NodemailerTransport.make(), pooled: undefined }
      },
    },
  ]
  for (const candidate of candidates) {
    if (!existsSync(join(root, candidate.dist))) {
      missing.push(`${candidate.name}: not built (${candidate.dist} is missing)`)
      continue
    }
    try {
      transports.push({ name: candidate.name, ...(await candidate.load()) })
    } catch (error) {
      missing.push(`${candidate.name}: cannot be loaded (${error.message})`)
    }
  }
  return { transports, missing }
}

const loadCore = async () => {
  const [{ Message }, Effect] = await Promise.all([
    import("@spoc-mail/core"),
    import("effect/Effect"),
  ])
  return { Message, Effect }
}

const policyFor = (port) => ({
  endpoint: { host, port, role: "primary" },
  mode: "NONE",
  tls: { host, rejectUnauthorized: true },
  credentials: undefined,
  connectionTimeoutMs: 10_000,
  commandTimeoutMs: 60_000,
  clientName: "bench.localhost",
})

const compose = ({ Message, Effect }, extra = {}) =>
  Effect.runPromise(
    Message.compose(
      {
        to: ["sink@bench.localhost"],
        subject: "spoc-mail bench",
        text: "Printer 7 reports: toner low.\n".repeat(32),
        ...extra,
      },
      { address: "bench@bench.localhost", name: undefined, text: "bench@bench.localhost" },
    ),
  )

/** Sends up to `count` messages, `concurrency` at a time, within `runLimitMs`. */
const sendMany = async ({ Effect }, transport, message, policy, count, concurrency) => {
  const started = performance.now()
  let sent = 0
  let failed = 0
  let firstError
  let next = 0
  const worker = async () => {
    while (next < count && performance.now() - started < runLimitMs) {
      next += 1
      const result = await Effect.runPromise(Effect.result(transport.send(message, policy)))
      if (result._tag === "Success") sent += 1
      else {
        failed += 1
        firstError ??= result.failure.message
      }
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker))
  return { sent, failed, firstError, ms: performance.now() - started }
}

const throughput = async (core, transport, port) => {
  const { Effect } = core
  const message = await compose(core)
  const policy = policyFor(port)
  await sendMany(core, transport.fresh(), message, policy, 5, 1) // warm-up

  const pooledRun = (sendWith) =>
    transport.pooled === undefined
      ? sendWith(transport.fresh())
      : Effect.runPromise(
          Effect.scoped(
            Effect.flatMap(
              transport.pooled({ pool: { maxIdlePerPolicy: pooledConcurrency } }),
              (t) => Effect.promise(() => sendWith(t)),
            ),
          ),
        )
  const pooled = await pooledRun((t) =>
    sendMany(core, t, message, policy, pooledCount, pooledConcurrency),
  )
  const fresh = await sendMany(core, transport.fresh(), message, policy, freshCount, 1)
  return {
    pooledPerSecond: (pooled.sent / pooled.ms) * 1000,
    pooledNote: transport.pooled === undefined ? "no pool: a connection per message" : "",
    freshMsPerMessage: fresh.ms / Math.max(1, fresh.sent),
    failed: pooled.failed + fresh.failed,
    firstError: pooled.firstError ?? fresh.firstError,
  }
}

// ---------------------------------------------------------------------------------------------
// Memory, in a fresh process per transport

/** `--memory <transport> <port> <file> <warm|cold>`: one send of the attachment; prints JSON. */
const runMemory = async (name, port, file, start) => {
  const core = await loadCore()
  const { transports } = await loadTransports()
  const transport = transports.find((t) => t.name === name)
  const message = await compose(core, { attachments: [{ filename: "scan.bin", path: file }] })
  // One pass of the composer first: V8 grows its heap to its working size for composition,
  // which every transport shares; what is measured after it is the transport's own cost.
  if (start === "warm") {
    await pipeline(message.stream(), new Writable({ write: (_chunk, _encoding, done) => done() }))
  }

  const baseline = process.memoryUsage.rss()
  let peak = baseline
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 5)
  const started = performance.now()
  const result = await core.Effect.runPromise(
    core.Effect.result(transport.fresh().send(message, policyFor(port))),
  )
  clearInterval(sampler)
  peak = Math.max(peak, process.memoryUsage.rss())
  process.stdout.write(
    `${JSON.stringify({
      ok: result._tag === "Success",
      error: result._tag === "Failure" ? result.failure.message : undefined,
      growthMiB: (peak - baseline) / 1024 / 1024,
      ms: performance.now() - started,
    })}\n`,
  )
}

const runChild = (args, timeoutMs) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, [self, ...args], { stdio: ["ignore", "pipe", "pipe"] })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill(), timeoutMs)
    child.on("exit", () => {
      clearTimeout(timer)
      try {
        resolve(JSON.parse(stdout.trim().split("\n").pop()))
      } catch {
        resolve({ ok: false, error: stderr.trim().split("\n").slice(-3).join(" ") || "no result" })
      }
    })
  })

const makeAttachment = () => {
  const folder = mkdtempSync(join(tmpdir(), "spoc-mail-bench-"))
  const file = join(folder, "attachment.bin")
  const block = Buffer.alloc(1024 * 1024)
  for (let i = 0; i < block.length; i += 1) block[i] = (i * 31 + 7) & 0xff
  writeFileSync(file, Buffer.alloc(0))
  for (let i = 0; i < attachmentMiB; i += 1) writeFileSync(file, block, { flag: "a" })
  return { folder, file }
}

// ---------------------------------------------------------------------------------------------
// Postfix's smtp-source

/** Runs smtp-source; returns its wall time and, from /proc, its peak RSS. */
const runSmtpSource = (smtpSource, args, timeoutMs) =>
  new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(smtpSource, args, { stdio: ["ignore", "ignore", "pipe"] })
    let stderr = ""
    let peakKiB = 0
    child.stderr.on("data", (chunk) => (stderr += chunk))
    const sampler = setInterval(() => {
      try {
        const status = readFileSync(`/proc/${child.pid}/status`, "utf8")
        const hwm = /VmHWM:\s+(\d+)/.exec(status)
        if (hwm !== null) peakKiB = Math.max(peakKiB, Number(hwm[1]))
      } catch {
        // The process has ended, or /proc is not there.
      }
    }, 5)
    const timer = setTimeout(() => child.kill(), timeoutMs)
    child.on("exit", (code) => {
      clearInterval(sampler)
      clearTimeout(timer)
      resolve({ ok: code === 0, ms: performance.now() - started, peakKiB, stderr: stderr.trim() })
    })
  })

const smtpSourceNumbers = async (smtpSource, port, messageBytes) => {
  const target = `${host}:${port}`
  const pooled = await runSmtpSource(
    smtpSource,
    [
      "-s",
      String(pooledConcurrency),
      "-d",
      "-m",
      String(pooledCount),
      "-l",
      String(messageBytes),
      target,
    ],
    runLimitMs * 2,
  )
  const fresh = await runSmtpSource(
    smtpSource,
    ["-s", "1", "-m", String(freshCount), "-l", String(messageBytes), target],
    runLimitMs * 2,
  )
  const large = await runSmtpSource(
    smtpSource,
    ["-m", "1", "-l", String(attachmentMiB * 1024 * 1024), target],
    runLimitMs * 4,
  )
  return {
    pooledPerSecond: pooled.ok ? (pooledCount / pooled.ms) * 1000 : undefined,
    freshMsPerMessage: fresh.ok ? fresh.ms / freshCount : undefined,
    peakRssMiB: large.ok && large.peakKiB > 0 ? large.peakKiB / 1024 : undefined,
    errors: [pooled, fresh, large].filter((r) => !r.ok).map((r) => r.stderr || "failed"),
  }
}

// ---------------------------------------------------------------------------------------------
// Report

const fixed = (value, digits = 1) =>
  value === undefined || Number.isNaN(value) ? "n/a" : value.toFixed(digits)

const main = async () => {
  const core = await loadCore()
  const { transports, missing } = await loadTransports()
  const sink = await startSink()
  const attachment = makeAttachment()
  const sampleBytes = await compose(core).then(async (m) => {
    let bytes = 0
    for await (const chunk of m.stream()) bytes += chunk.length
    return bytes
  })

  try {
    console.log("spoc-mail bench")
    console.log(`  sink:       ${sink.name} on ${host}:${sink.port}`)
    console.log(
      `  runs:       ${pooledCount} messages of ${sampleBytes} bytes, ${pooledConcurrency} at a ` +
        `time; ${freshCount} one at a time with a new connection each; one ` +
        `${attachmentMiB} MiB attachment from a temporary file`,
    )
    console.log(
      "  memory:     RSS sampled every 5 ms in a fresh process per transport; warm: after one " +
        "pass of core's composer, cold: without",
    )
    for (const line of missing) console.log(`  missing:    ${line}`)
    console.log("")

    const rows = []
    for (const transport of transports) {
      const speed = await throughput(core, transport, sink.port)
      const memory = {}
      for (const start of ["warm", "cold"]) {
        memory[start] = await runChild(
          ["--memory", transport.name, String(sink.port), attachment.file, start],
          runLimitMs * 4,
        )
      }
      rows.push({ name: transport.name, speed, memory })
    }

    const header =
      "transport     msg/s, 5 pooled   ms/msg, new connection   " +
      "peak RSS growth, 100 MiB attachment"
    console.log(header)
    console.log("-".repeat(header.length))
    for (const { name, speed, memory } of rows) {
      const growth = ["warm", "cold"]
        .map((start) =>
          memory[start].ok
            ? `${fixed(memory[start].growthMiB)} MiB ${start}`
            : `${start} failed: ${memory[start].error}`,
        )
        .join(", ")
      console.log(
        `${name.padEnd(14)}${fixed(speed.pooledPerSecond, 0).padStart(15)}   ` +
          `${fixed(speed.freshMsPerMessage, 2).padStart(20)}   ${growth}` +
          (speed.pooledNote ? `   (${speed.pooledNote})` : ""),
      )
      if (speed.failed > 0)
        console.log(`  ${speed.failed} sends failed, first: ${speed.firstError}`)
    }

    const smtpSource = commandPath("smtp-source")
    if (smtpSource === undefined) {
      console.log("\nPostfix's smtp-source is not installed: no comparison with it.")
      return
    }
    const source = await smtpSourceNumbers(smtpSource, sink.port, sampleBytes)
    console.log(
      `${"smtp-source".padEnd(14)}${fixed(source.pooledPerSecond, 0).padStart(15)}   ` +
        `${fixed(source.freshMsPerMessage, 2).padStart(20)}   ` +
        `${fixed(source.peakRssMiB)} MiB peak RSS (the whole process; ` +
        `its payload is generated, not an attachment)`,
    )
    for (const error of source.errors) console.log(`  smtp-source: ${error}`)
    console.log("\nratios to smtp-source (throughput: higher is better; time: lower is better)")
    for (const { name, speed } of rows) {
      console.log(
        `${name.padEnd(14)}msg/s x${fixed(speed.pooledPerSecond / source.pooledPerSecond, 2)}   ` +
          `ms/msg x${fixed(speed.freshMsPerMessage / source.freshMsPerMessage, 2)}`,
      )
    }
  } finally {
    sink.child.kill()
    rmSync(attachment.folder, { recursive: true, force: true })
  }
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === "--memory") await runMemory(rest[0], Number(rest[1]), rest[2], rest[3])
else await main()

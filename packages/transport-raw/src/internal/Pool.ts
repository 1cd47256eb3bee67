/**
 * Idle connections kept for reuse, keyed by the whole connection policy: the
 * endpoint's host and port, the encryption mode, the client name, the user
 * and (through a keyed hash, never in clear) the password, and every TLS
 * option as given: versions, ciphers, trusted CAs, server name. Two sends
 * share a connection only when they would have opened the same one.
 *
 * Only a healthy connection comes back: one that hit an error or a timeout
 * is closed by the transport, and one that fails while idle (the server
 * closed it) leaves the pool at once. Idle connections are closed after
 * `idleTimeoutMs`, do not keep the process alive, and are all handed back by
 * `drain` when the transport's scope closes. The pool holds no fibers and
 * does no I/O of its own: closing is the caller's `close` callback.
 */
import { createHash, createHmac, randomBytes } from "node:crypto"
import { Transport } from "@spoc-mail/core"
import * as Redacted from "effect/Redacted"
import type { Session } from "./Session.ts"

export interface PoolOptions {
  /** Idle connections kept per connection policy. */
  readonly maxIdle: number
  /** An idle connection is closed after this long. */
  readonly idleTimeoutMs: number
  /** A connection is closed after carrying this many messages. */
  readonly maxMessages: number
}

interface Entry {
  readonly session: Session
  readonly release: () => void
}

export class Pool {
  private readonly idle = new Map<string, Array<Entry>>()
  private readonly secret = randomBytes(32)
  private closed = false

  constructor(
    private readonly options: PoolOptions,
    private readonly close: (session: Session) => void,
  ) {}

  /** The key of a connection policy: equal keys mean interchangeable connections. */
  keyOf(policy: Transport.ConnectionPolicy): string {
    const hash = createHash("sha256")
    hash.update(
      canonical([
        policy.endpoint.host,
        policy.endpoint.port,
        policy.mode,
        policy.clientName,
        policy.credentials?.user ?? null,
      ]),
    )
    if (policy.credentials !== undefined) {
      hash.update(
        createHmac("sha256", this.secret)
          .update(Redacted.value(Transport.secretOf(policy.credentials)))
          .digest(),
      )
    }
    hash.update(canonical(policy.tls))
    return hash.digest("hex")
  }

  /** An idle connection for `key`, most recently used first, or undefined. */
  take(key: string): Session | undefined {
    const list = this.idle.get(key)
    while (list !== undefined && list.length > 0) {
      const entry = list.pop()!
      entry.release()
      if (entry.session.socket.usable) {
        entry.session.socket.ref()
        return entry.session
      }
    }
    return undefined
  }

  /** Keeps a healthy connection for reuse; false when the caller must close it. */
  give(key: string, session: Session): boolean {
    if (
      this.closed ||
      !session.socket.usable ||
      session.delivered >= this.options.maxMessages ||
      this.options.maxIdle <= 0
    ) {
      return false
    }
    const list = this.idle.get(key) ?? []
    if (list.length >= this.options.maxIdle) return false
    this.idle.set(key, list)

    const remove = (): void => {
      const index = list.indexOf(entry)
      if (index >= 0) list.splice(index, 1)
      if (list.length === 0 && this.idle.get(key) === list) this.idle.delete(key)
    }
    const timer = setTimeout(() => {
      remove()
      entry.release()
      this.close(session)
    }, this.options.idleTimeoutMs)
    timer.unref()
    const stopWatching = session.socket.onFailure(() => {
      remove()
      clearTimeout(timer)
      session.socket.destroy()
    })
    const entry: Entry = {
      session,
      release: () => {
        clearTimeout(timer)
        stopWatching()
      },
    }
    session.socket.unref()
    list.push(entry)
    return true
  }

  /** Closes the pool: returns every idle connection for closing; later `give`s are refused. */
  drain(): ReadonlyArray<Session> {
    this.closed = true
    const sessions: Array<Session> = []
    for (const list of this.idle.values()) {
      for (const entry of list) {
        entry.release()
        sessions.push(entry.session)
      }
    }
    this.idle.clear()
    return sessions
  }
}

const identities = new WeakMap<object, number>()
let nextIdentity = 0

/** A stable text for any TLS option value; buffers by digest, objects of classes by identity. */
const canonical = (value: unknown): string => {
  if (value === undefined) return "u"
  if (value === null || typeof value !== "object") {
    if (typeof value === "function") return `f${identity(value)}`
    return JSON.stringify(value) ?? String(value)
  }
  if (value instanceof Uint8Array) {
    return `b${createHash("sha256").update(value).digest("hex")}`
  }
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`
  const prototype = Object.getPrototypeOf(value)
  if (prototype !== Object.prototype && prototype !== null) return `o${identity(value)}`
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
  return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonical(v)}`).join(",")}}`
}

const identity = (value: object): number => {
  let id = identities.get(value)
  if (id === undefined) {
    nextIdentity += 1
    id = nextIdentity
    identities.set(value, id)
  }
  return id
}

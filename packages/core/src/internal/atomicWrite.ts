/**
 * Writes a file so that readers see either the old content or the new, never
 * a half-written file: the bytes go to a temporary file in the same folder,
 * are flushed to disk, and the temporary file is renamed over the target.
 * The target's permission bits are kept; a new file gets `mode`.
 *
 * It does not lock: two writers at the same time end with one of the two
 * complete files.
 */
import { randomBytes } from "node:crypto"
import {
  closeSync,
  fchmodSync,
  fsyncSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from "node:fs"
import { basename, dirname, join } from "node:path"

export const writeFileAtomic = (path: string, bytes: Uint8Array, mode = 0o644): void => {
  let finalMode = mode
  try {
    finalMode = statSync(path).mode & 0o7777
  } catch {
    // A new file: use the given mode.
  }
  const temporary = join(
    dirname(path),
    `.${basename(path)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`,
  )
  const fd = openSync(temporary, "wx", finalMode)
  try {
    try {
      for (let written = 0; written < bytes.length;) {
        written += writeSync(fd, bytes, written, bytes.length - written)
      }
      fchmodSync(fd, finalMode)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(temporary, path)
  } catch (error) {
    try {
      unlinkSync(temporary)
    } catch {
      // Already gone.
    }
    throw error
  }
  // Make the rename itself durable where the platform allows syncing a folder.
  try {
    const folder = openSync(dirname(path), "r")
    try {
      fsyncSync(folder)
    } finally {
      closeSync(folder)
    }
  } catch {
    // Windows cannot open folders for syncing; the rename is still atomic there.
  }
}

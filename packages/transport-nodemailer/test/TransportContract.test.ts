// Every server case of CASES.md (C01-C14), held to the same outcome as every other transport.
import { transportContract } from "@spoc-mail/testkit/contracts"
import { NodemailerTransport } from "../src/index.ts"

transportContract("nodemailer", () => NodemailerTransport.make())

import { transportContract } from "@spoc-mail/testkit/contracts"
import { NodemailerTransport } from "../src/index.ts"

transportContract("nodemailer", () => NodemailerTransport.make())

import { library } from "../../tsup.shared.ts"

export default library(["src/index.ts", "src/main.ts"], { dts: { entry: "src/index.ts" } })

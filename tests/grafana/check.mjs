// Type-checks each dashboard JSON named on the command line against Grafana's own dashboard
// schema (@grafana/schema's `Dashboard`, generated from the schema Grafana validates with),
// strictly: a missing required field, a wrong type, or a key the schema does not know fails.
// Exit 0 when every dashboard passes; the compiler's messages otherwise.
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import ts from "typescript";

const here = resolve(import.meta.dirname);
const folder = mkdtempSync(join(here, ".check-"));
try {
  const files = process.argv.slice(2).map((path, index) => {
    const file = join(folder, `dashboard${index}.ts`);
    // `satisfies` keeps the literal's own types (a union member stays a literal) and checks
    // excess keys, as assigning the parsed JSON would not.
    const body = readFileSync(path, "utf8");
    writeFileSync(file, `import type { Dashboard } from "@grafana/schema";\n` +
      `export const dashboard = ${body.trim()} satisfies Dashboard;\n`);
    return { file, path };
  });
  const program = ts.createProgram(files.map(({ file }) => file), {
    strict: true, noEmit: true, module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext, target: ts.ScriptTarget.ES2022,
    skipLibCheck: true, types: [], typeRoots: [join(here, "node_modules", "@types")],
  });
  const problems = ts.getPreEmitDiagnostics(program);
  for (const problem of problems) {
    const where = problem.file ? files.find(({ file }) => problem.file.fileName === file)?.path : "";
    console.error(`${where ?? problem.file?.fileName}: ${ts.flattenDiagnosticMessageText(problem.messageText, "\n")}`);
  }
  process.exitCode = problems.length ? 1 : 0;
} finally {
  rmSync(folder, { recursive: true, force: true });
}

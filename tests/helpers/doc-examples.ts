// The runnable examples of a markdown file: fenced blocks opened with "```js example=NAME" (optionally
// "needs=btrfs"), and their expected output in a following "```text output=NAME" block.
import { readFileSync } from 'node:fs';

export interface DocExample {
  name: string;
  code: string;
  /** Needs root and a mounted btrfs. */
  needsBtrfs: boolean;
  /** Expected stdout, when the document shows it. */
  output?: string;
}

export function docExamples(markdownPath: string): DocExample[] {
  const text = readFileSync(markdownPath, 'utf8');
  const fence = /^```(\w+)([^\n]*)\n([\s\S]*?)^```[ \t]*$/gm;
  const examples = new Map<string, DocExample>();
  const outputs = new Map<string, string>();
  for (const m of text.matchAll(fence)) {
    const info = m[2]!;
    const body = m[3]!;
    const example = /\bexample=([\w-]+)/.exec(info);
    const output = /\boutput=([\w-]+)/.exec(info);
    if (example) {
      const name = example[1]!;
      if (examples.has(name)) throw new Error(`${markdownPath}: two examples named ${name}`);
      examples.set(name, { name, code: body, needsBtrfs: /\bneeds=btrfs\b/.test(info) });
    } else if (output) {
      outputs.set(output[1]!, body);
    }
  }
  for (const [name, out] of outputs) {
    const ex = examples.get(name);
    if (!ex) throw new Error(`${markdownPath}: output=${name} has no example`);
    ex.output = out;
  }
  return [...examples.values()];
}

import fs from 'node:fs';
import { Command } from 'commander';
import { bashCompletion, fishCompletion, manPage, zshCompletion } from '../completion.ts';
import { UsageError } from '../exit-codes.ts';

interface GenerateOptions {
  readonly bashCompletion?: string | true;
  readonly zshCompletion?: string | true;
  readonly fishCompletion?: string | true;
  readonly man?: string | true;
}

export function generateCommand(): Command {
  return new Command('generate')
    .description('write shell completions or the man page (to FILE, or to stdout when none is given)')
    .option('--bash-completion [file]', 'bash completion script')
    .option('--zsh-completion [file]', 'zsh completion script')
    .option('--fish-completion [file]', 'fish completion script')
    .option('--man [file]', 'man page (roff)')
    .action((options: GenerateOptions, command: Command) => {
      const program = command.parent!;
      const wanted = [
        [options.bashCompletion, bashCompletion],
        [options.zshCompletion, zshCompletion],
        [options.fishCompletion, fishCompletion],
        [options.man, manPage],
      ] as const;
      const chosen = wanted.filter(([target]) => target !== undefined);
      if (chosen.length === 0) throw new UsageError('say what to generate: --bash-completion, --zsh-completion, --fish-completion or --man');
      if (chosen.filter(([target]) => target === true).length > 1) throw new UsageError('only one of them can go to stdout: give the others a file name');
      for (const [target, generate] of chosen) {
        const text = generate(program);
        if (target === true) process.stdout.write(text);
        else {
          fs.writeFileSync(target!, text);
          // On stderr: stdout may be carrying another one of them.
          process.stderr.write(`wrote ${target}\n`);
        }
      }
    });
}

// Shell completions and a man page, generated from the command tree itself, so they list exactly the
// commands and options the program has.
import type { Command, Option } from 'commander';
import { VERSION } from '../version.ts';

interface Spec {
  readonly path: string[];
  readonly description: string;
  readonly options: readonly Option[];
  readonly subcommands: readonly Spec[];
}

function specOf(command: Command, path: string[] = []): Spec {
  return {
    path,
    description: command.description(),
    options: command.options.filter((o) => !o.hidden),
    subcommands: command.commands.map((c) => specOf(c, [...path, c.name()])),
  };
}

function flagsOf(options: readonly Option[]): string[] {
  return options.flatMap((o) => [o.short, o.long].filter((f): f is string => f !== undefined));
}

function all(spec: Spec): Spec[] {
  return [spec, ...spec.subcommands.flatMap(all)];
}

const quote = (text: string): string => `'${text.replace(/'/g, `'\\''`)}'`;

export function bashCompletion(program: Command): string {
  const root = specOf(program);
  const cases = all(root)
    .map((s) => {
      const words = [...s.subcommands.map((c) => c.path[c.path.length - 1]!), ...flagsOf(s.options), '--help'];
      return `    ${quote(s.path.join(' '))}) words=${quote(words.join(' '))} ;;`;
    })
    .join('\n');
  return `# bash completion for coffer ${VERSION} (coffer generate --bash-completion)
_coffer() {
  local cur=\${COMP_WORDS[COMP_CWORD]} path="" w i
  # The command path: the words before the cursor that are sub-commands (options are skipped).
  for ((i = 1; i < COMP_CWORD; i++)); do
    w=\${COMP_WORDS[i]}
    [[ $w == -* ]] && continue
    case "\${path:+$path }$w" in
${all(root)
  .filter((s) => s.path.length > 0)
  .map((s) => `      ${quote(s.path.join(' '))}) path=${quote(s.path.join(' '))} ;;`)
  .join('\n')}
    esac
  done
  local words
  case "$path" in
${cases}
  esac
  if [[ $cur == -* || -n $words ]]; then
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
  fi
  [[ \${#COMPREPLY[@]} -eq 0 ]] && COMPREPLY=($(compgen -f -- "$cur"))
  return 0
}
complete -o filenames -F _coffer coffer
`;
}

export function zshCompletion(program: Command): string {
  const root = specOf(program);
  const fn = (s: Spec): string => `_coffer${s.path.map((p) => `_${p.replace(/\W/g, '_')}`).join('')}`;
  // Escapes for _arguments specs ([, ], :); quote() then makes the whole spec one shell word.
  const describe = (text: string): string => text.replace(/[[\]:]/g, (c) => `\\${c}`);
  const body = all(root)
    .map((s) => {
      const opts = s.options.map((o) => {
        const flags = [o.short, o.long].filter(Boolean) as string[];
        const arg = o.required || o.optional ? ':value:_files' : '';
        const names = flags.length > 1 ? `{${flags.join(',')}}` : flags[0]!;
        return `    ${flags.length > 1 ? `'(${flags.join(' ')})'${names}` : names}${quote(`[${describe(o.description)}]${arg}`)}`;
      });
      if (s.subcommands.length === 0) return `${fn(s)}() {\n  _arguments -s \\\n${[...opts, "    '*:file:_files'"].join(' \\\n')}\n}`;
      const list = s.subcommands.map((c) => `    ${quote(`${c.path[c.path.length - 1]}:${describe(c.description)}`)}`).join('\n');
      return `${fn(s)}() {
  local line state
  _arguments -C \\
${[...opts, "    '1: :->command'", "    '*::arg:->args'"].join(' \\\n')}
  case $state in
    command)
      local -a commands
      commands=(
${list}
      )
      _describe command commands ;;
    args)
      case $line[1] in
${s.subcommands.map((c) => `        ${c.path[c.path.length - 1]}) ${fn(c)} ;;`).join('\n')}
      esac ;;
  esac
}`;
    })
    .join('\n\n');
  return `#compdef coffer
# zsh completion for coffer ${VERSION} (coffer generate --zsh-completion)
${body}

_coffer "$@"
`;
}

export function fishCompletion(program: Command): string {
  const root = specOf(program);
  const lines = [`# fish completion for coffer ${VERSION} (coffer generate --fish-completion)`, 'complete -c coffer -f'];
  for (const s of all(root)) {
    const condition = s.path.length === 0 ? '__fish_use_subcommand' : `__fish_seen_subcommand_from ${s.path[s.path.length - 1]}`;
    for (const c of s.subcommands) lines.push(`complete -c coffer -n ${quote(condition)} -a ${c.path[c.path.length - 1]} -d ${quote(c.description)}`);
    for (const o of s.options) {
      const flags = [o.short ? `-s ${o.short.slice(1)}` : '', o.long ? `-l ${o.long.slice(2)}` : ''].filter(Boolean).join(' ');
      lines.push(`complete -c coffer -n ${quote(condition)} ${flags}${o.required || o.optional ? ' -r -F' : ''} -d ${quote(o.description)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const roff = (text: string): string => text.replace(/\\/g, '\\e').replace(/^[.']/gm, '\\&$&').replace(/-/g, '\\-');

export function manPage(program: Command, date = new Date()): string {
  const root = specOf(program);
  const out = [
    `.TH COFFER 1 "${date.toISOString().slice(0, 10)}" "coffer ${VERSION}" "User Commands"`,
    '.SH NAME',
    `coffer \\- ${roff(root.description)}`,
    '.SH SYNOPSIS',
    '.B coffer',
    '.I command',
    '[options] [arguments]',
    '.SH DESCRIPTION',
    roff(root.description),
    'Every repository command takes \\fB\\-\\-repo\\fR (or $COFFER_REPO) and the passphrase from $COFFER_PASSWORD, \\fB\\-\\-password\\-file\\fR or \\fB\\-\\-password\\-command\\fR.',
    '.SH COMMANDS',
  ];
  for (const s of all(root).filter((x) => x.path.length > 0)) {
    const command = program.commands.find((c) => c.name() === s.path[0]);
    const usage = s.path.length === 1 && command ? command.usage() : '';
    out.push('.TP', `.B coffer ${roff(s.path.join(' '))}${usage ? ` ${roff(usage)}` : ''}`, roff(s.description));
    for (const o of s.options) out.push('.RS', '.TP', `.B ${roff(o.flags)}`, roff(o.description), '.RE');
  }
  out.push('.SH EXIT STATUS', '0 success; 1 error; 3 snapshot made but some files could not be read; 4 snapshot committed on some destinations only; 130 interrupted.');
  out.push('.SH SEE ALSO', 'The README and docs/FORMAT.md of the coffer package.');
  return `${out.join('\n')}\n`;
}

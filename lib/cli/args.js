'use strict';

// The command line parser of the deltasync CLI: `--name value`, `--name=value`,
// boolean flags, `--` to end options, positionals by name. Every mistake is a
// UsageError (exit code 2) whose message is one line.

/** Bad arguments: the CLI prints the message on one line and exits with code 2. */
class UsageError extends Error {
  constructor(message) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure while running a valid command: the CLI prints the message and exits with code 1. */
class CliError extends Error {
  constructor(message) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * Parses argv against a command spec.
 * @param {string[]} argv the arguments after the command name
 * @param {{ positionals: string[], options: Record<string, { type: 'boolean' | 'string' | 'integer', min?: number,
 *   max?: number, choices?: string[], default?: any, required?: boolean }> }} spec
 * @returns {{ help: boolean, positionals: Record<string, string>, options: Record<string, any> }}
 */
function parseArgs(argv, spec) {
  // --help anywhere before `--` wins over everything else on the line, even mistakes.
  const end = argv.indexOf('--');
  if ((end === -1 ? argv : argv.slice(0, end)).some((arg) => arg === '--help' || arg === '-h')) {
    return { help: true, positionals: {}, options: {} };
  }
  const options = {};
  const positionals = [];
  let onlyPositionals = false;
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i];
    if (onlyPositionals || arg === '-' || !arg.startsWith('-')) {
      positionals.push(arg);
      continue;
    }
    if (arg === '--') {
      onlyPositionals = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new UsageError(`unknown option ${arg}`);
    const equals = arg.indexOf('=');
    const name = arg.slice(2, equals === -1 ? undefined : equals);
    const option = Object.prototype.hasOwnProperty.call(spec.options, name) ? spec.options[name] : undefined;
    if (!option) throw new UsageError(`unknown option --${name}`);
    if (Object.prototype.hasOwnProperty.call(options, name)) throw new UsageError(`option --${name} given twice`);
    if (option.type === 'boolean') {
      if (equals !== -1) throw new UsageError(`option --${name} takes no value`);
      options[name] = true;
      continue;
    }
    let value;
    if (equals !== -1) {
      value = arg.slice(equals + 1);
    } else {
      if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
      value = argv[(i += 1)];
    }
    options[name] = convert(name, option, value);
  }
  const named = {};
  spec.positionals.forEach((name, index) => {
    if (index >= positionals.length) throw new UsageError(`missing <${name}>`);
    if (positionals[index] === '') throw new UsageError(`<${name}> must not be empty`);
    named[name] = positionals[index];
  });
  if (positionals.length > spec.positionals.length) {
    throw new UsageError(`unexpected argument ${JSON.stringify(positionals[spec.positionals.length])}`);
  }
  for (const [name, option] of Object.entries(spec.options)) {
    if (options[name] === undefined && option.default !== undefined) options[name] = option.default;
    if (options[name] === undefined && option.required) throw new UsageError(`missing --${name}`);
  }
  return { help: false, positionals: named, options };
}

function convert(name, option, value) {
  if (option.type === 'string') {
    if (value === '') throw new UsageError(`option --${name} needs a non-empty value`);
    if (option.choices && !option.choices.includes(value)) {
      throw new UsageError(`option --${name} expects one of ${option.choices.join(', ')}, got ${JSON.stringify(value)}`);
    }
    return value;
  }
  // integer
  const { min = 0, max = Number.MAX_SAFE_INTEGER } = option;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)) || Number(value) < min || Number(value) > max) {
    const range = option.max === undefined ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError(`option --${name} expects ${range}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

module.exports = { parseArgs, UsageError, CliError };

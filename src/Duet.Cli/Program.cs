// duet: the command-line entry point. Each verb lives in Commands/; this file only wires them up.
using System.CommandLine;
using Duet.Cli.Commands;

var root = new RootCommand("Duet: a bilingual (English + 中文) LLM toolchain: data, tokenizer, train, eval, chat, serve.");
root.Subcommands.Add(TokenizeCommands.Tokenize());
root.Subcommands.Add(TokenizeCommands.Detokenize());
root.Subcommands.Add(DataCommands.Create());
root.Subcommands.Add(TokenizerCommands.Create());
foreach (var c in ModelCommands.Create()) root.Subcommands.Add(c);
foreach (var c in RunCommands.Create()) root.Subcommands.Add(c);
foreach (var c in TrainCommands.Create()) root.Subcommands.Add(c);
root.Subcommands.Add(ServeCommands.Serve());
root.Subcommands.Add(EvalCommands.Create());
root.Subcommands.Add(LoraCommands.Create());
root.Subcommands.Add(FinetuneCommands.Create());
root.Subcommands.Add(InfoCommand.Create());
root.Subcommands.Add(MpiCommands.Create());
return CliRunner.Run(root, args);

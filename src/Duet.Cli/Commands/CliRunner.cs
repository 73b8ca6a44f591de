// Runs a parsed command and turns the errors a user can cause (bad files, bad input) into one line
// on stderr and exit code 1, instead of a stack trace. In an MPI job of several ranks any error on a rank ends the
// whole job (MPI_Abort) with the rank named, so that no other rank waits for it.
using System.CommandLine;

namespace Duet.Cli.Commands;

internal static class CliRunner
{
    public static int Run(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
        try
        {
            _ = Duet.Tensors.Kernels.CpuProfile.Current; // a bad DUET_CPU is reported here, before any kernel runs
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false }); // errors a user causes: one line below, not a stack trace
        }
        catch (Exception e) when (MpiCommands.World is { Size: > 1 })
        {
            MpiCommands.AbortOnError(e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException or FormatException or NotSupportedException or Duet.Mpi.MpiException ? e.Message : e.ToString());
            return 1;
        }
        catch (Exception e) when (e is InvalidDataException or IOException or UnauthorizedAccessException or ArgumentException or FormatException or NotSupportedException or Duet.Mpi.MpiException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }
}

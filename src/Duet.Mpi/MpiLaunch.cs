// What the launcher told this process: whether it runs as one rank of an MPI job, and which. Read from the
// environment the launchers set before MPI is loaded, so that a plain `duet train` never touches libmpi and an
// `mpirun -np 2 duet train` on a machine without a usable libmpi fails with a message instead of running twice alone.
namespace Duet.Mpi;

/// <summary>The launcher's view of this process: its rank and the job's size, and who said so.</summary>
public readonly record struct MpiLaunch(int Rank, int Size, string Launcher)
{
    /// <summary>
    /// The job this process was started in by mpirun/mpiexec (Open MPI, MPICH's Hydra) or Slurm's srun, or null when
    /// it was started alone. Open MPI sets OMPI_COMM_WORLD_*, Hydra PMI_RANK/PMI_SIZE, srun SLURM_PROCID/SLURM_NTASKS
    /// (srun also for a job step of one task, which counts as alone).
    /// </summary>
    public static MpiLaunch? Detect(Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        return From(env, "OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "Open MPI's mpirun")
            ?? From(env, "PMI_RANK", "PMI_SIZE", "MPICH's mpiexec (Hydra)")
            ?? From(env, "PMIX_RANK", "SLURM_NTASKS", "srun (PMIx)")
            ?? From(env, "SLURM_PROCID", "SLURM_NTASKS", "Slurm's srun");
    }

    private static MpiLaunch? From(Func<string, string?> env, string rankVar, string sizeVar, string launcher)
    {
        string? r = env(rankVar), s = env(sizeVar);
        if (r is null || s is null) return null;
        if (!int.TryParse(r, out int rank) || !int.TryParse(s, out int size) || size <= 0 || rank < 0 || rank >= size)
            throw new MpiException($"{launcher} set {rankVar}={r} and {sizeVar}={s}: not a rank of a job of that size");
        return new MpiLaunch(rank, size, launcher);
    }

    /// <summary>True when the launcher started more than one process: the work must then be shared over MPI.</summary>
    public bool IsParallel => Size > 1;
}

/// <summary>An MPI call that failed, a library that cannot be used, or a peer that stopped answering.</summary>
public sealed class MpiException(string message, int errorCode = 0) : Exception(message)
{
    /// <summary>The MPI error code (0 when the error is Duet's own).</summary>
    public int ErrorCode { get; } = errorCode;
}

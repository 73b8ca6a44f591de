// The system's libmpi, loaded at run time, and the ABI facts that differ between the two families of MPI libraries:
//   Open MPI  : handles are pointers to exported globals (MPI_COMM_WORLD = &ompi_mpi_comm_world, MPI_FLOAT =
//               &ompi_mpi_float, MPI_SUM = &ompi_mpi_op_sum, ...); MPI_Request is a pointer; MPI_IN_PLACE = (void*)1;
//               MPI_STATUSES_IGNORE = NULL.
//   MPICH ABI : (MPICH, Intel MPI, MVAPICH) handles are 32-bit integers fixed by mpi.h (MPI_COMM_WORLD = 0x44000000,
//               MPI_FLOAT = 0x4c00040a, MPI_SUM = 0x58000003, ...); MPI_Request is an int; MPI_IN_PLACE = (void*)-1;
//               MPI_STATUSES_IGNORE = (MPI_Status*)1.
// Handles travel as nint: an int handle passed in a 64-bit argument slot is read by the callee from the low half.
// The family is told by MPI_Get_library_version (callable before MPI_Init) and, for Open MPI, by its exports;
// any other library is refused with its version string rather than called with guessed constants.
using System.Runtime.InteropServices;

namespace Duet.Mpi;

public enum MpiFlavour { OpenMpi, Mpich }

internal sealed unsafe class MpiLibrary
{
    public string Path { get; }
    public MpiFlavour Flavour { get; }
    public string Version { get; }

    // Handles.
    public nint CommWorld, Float, Double, Int, Long, Byte, OpSum, OpMax, OpMin, ErrorsReturn, RequestNull;
    public void* InPlace, StatusesIgnore;
    /// <summary>Bytes of one MPI_Request: 8 (Open MPI pointer) or 4 (MPICH int).</summary>
    public int RequestSize;

    // Functions (MPI-3.1 C bindings). int is the error code.
    public delegate* unmanaged<int*, byte***, int, int*, int> InitThread;
    public delegate* unmanaged<int*, int> Initialized, FinalizedF;
    public delegate* unmanaged<int> FinalizeF;
    public delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    public delegate* unmanaged<nint, int, int> AbortF;
    public delegate* unmanaged<int, byte*, int*, int> ErrorString;
    public delegate* unmanaged<byte*, int*, int> GetLibraryVersion, GetProcessorName;
    public delegate* unmanaged<nint, void*, int> Ibarrier;
    public delegate* unmanaged<void*, int, nint, int, nint, void*, int> Ibcast;
    public delegate* unmanaged<void*, void*, int, nint, nint, nint, void*, int> Iallreduce;
    public delegate* unmanaged<void*, void*, int, nint, nint, nint, void*, int> IreduceScatterBlock;
    public delegate* unmanaged<void*, int, nint, void*, int, nint, nint, void*, int> Iallgather;
    public delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, void*, int> Iallgatherv;
    public delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, void*, int> Igather;
    public delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, int, nint, void*, int> Igatherv;
    public delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, void*, int> Ialltoallv;
    public delegate* unmanaged<int, void*, int*, void*, int> Testall;

    private MpiLibrary(string path, nint h)
    {
        Path = path;
        nint Get(string name) =>
            NativeLibrary.TryGetExport(h, name, out var f) ? f : throw new MpiException($"{path} has no {name}: not an MPI-3 library");
        GetLibraryVersion = (delegate* unmanaged<byte*, int*, int>)Get("MPI_Get_library_version");
        var buf = new byte[8192 + 1];
        int len = 0;
        fixed (byte* b = buf) GetLibraryVersion(b, &len);
        Version = System.Text.Encoding.UTF8.GetString(buf, 0, Math.Clamp(len, 0, 8192)).TrimEnd('\0', '\n', ' ').Split('\n')[0].Trim();
        bool ompi = NativeLibrary.TryGetExport(h, "ompi_mpi_comm_world", out _);
        if (ompi) Flavour = MpiFlavour.OpenMpi;
        else if (Version.Contains("MPICH", StringComparison.OrdinalIgnoreCase) || Version.Contains("Intel(R) MPI", StringComparison.Ordinal)
            || Version.Contains("MVAPICH", StringComparison.OrdinalIgnoreCase)) Flavour = MpiFlavour.Mpich;
        else throw new MpiException($"{path} is an MPI library Duet does not know (\"{Version}\"): Duet speaks Open MPI's ABI and MPICH's (MPICH, Intel MPI, MVAPICH). Install Debian's openmpi-bin or mpich, or point DUET_MPI_LIBRARY at one of them");

        if (Flavour == MpiFlavour.OpenMpi)
        {
            nint G(string name) => NativeLibrary.TryGetExport(h, name, out var a) ? a : throw new MpiException($"{path}: Open MPI without {name}");
            CommWorld = G("ompi_mpi_comm_world"); Float = G("ompi_mpi_float"); Double = G("ompi_mpi_double"); Int = G("ompi_mpi_int");
            Long = G("ompi_mpi_long_long_int"); Byte = G("ompi_mpi_byte"); OpSum = G("ompi_mpi_op_sum"); OpMax = G("ompi_mpi_op_max");
            OpMin = G("ompi_mpi_op_min"); ErrorsReturn = G("ompi_mpi_errors_return"); RequestNull = G("ompi_request_null");
            InPlace = (void*)1; StatusesIgnore = null; RequestSize = 8;
        }
        else
        {
            CommWorld = 0x44000000; Float = 0x4c00040a; Double = 0x4c00080b; Int = 0x4c000405; Long = 0x4c000809; Byte = 0x4c00010d;
            OpSum = 0x58000003; OpMax = 0x58000001; OpMin = 0x58000002; ErrorsReturn = 0x54000001; RequestNull = 0x2c000000;
            InPlace = (void*)-1; StatusesIgnore = (void*)1; RequestSize = 4;
        }
        InitThread = (delegate* unmanaged<int*, byte***, int, int*, int>)Get("MPI_Init_thread");
        Initialized = (delegate* unmanaged<int*, int>)Get("MPI_Initialized");
        FinalizedF = (delegate* unmanaged<int*, int>)Get("MPI_Finalized");
        FinalizeF = (delegate* unmanaged<int>)Get("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Get("MPI_Comm_set_errhandler");
        AbortF = (delegate* unmanaged<nint, int, int>)Get("MPI_Abort");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Get("MPI_Error_string");
        GetProcessorName = (delegate* unmanaged<byte*, int*, int>)Get("MPI_Get_processor_name");
        Ibarrier = (delegate* unmanaged<nint, void*, int>)Get("MPI_Ibarrier");
        Ibcast = (delegate* unmanaged<void*, int, nint, int, nint, void*, int>)Get("MPI_Ibcast");
        Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, void*, int>)Get("MPI_Iallreduce");
        IreduceScatterBlock = (delegate* unmanaged<void*, void*, int, nint, nint, nint, void*, int>)Get("MPI_Ireduce_scatter_block");
        Iallgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, void*, int>)Get("MPI_Iallgather");
        Iallgatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, nint, void*, int>)Get("MPI_Iallgatherv");
        Igather = (delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, void*, int>)Get("MPI_Igather");
        Igatherv = (delegate* unmanaged<void*, int, nint, void*, int*, int*, nint, int, nint, void*, int>)Get("MPI_Igatherv");
        Ialltoallv = (delegate* unmanaged<void*, int*, int*, nint, void*, int*, int*, nint, nint, void*, int>)Get("MPI_Ialltoallv");
        Testall = (delegate* unmanaged<int, void*, int*, void*, int>)Get("MPI_Testall");
    }

    /// <summary>The libraries tried, in order: DUET_MPI_LIBRARY, then the one the launcher's family ships, then the others.</summary>
    internal static IReadOnlyList<string> Candidates(MpiLaunch? launch, Func<string, string?> env)
    {
        var list = new List<string>();
        if (env("DUET_MPI_LIBRARY") is { Length: > 0 } forced) return [forced];
        string[] ompi = ["libmpi.so.40"], mpich = ["libmpi.so.12", "libmpich.so.12"];
        if (launch?.Launcher.Contains("MPICH", StringComparison.Ordinal) == true) { list.AddRange(mpich); list.AddRange(ompi); }
        else { list.AddRange(ompi); list.AddRange(mpich); }
        list.Add("libmpi.so");
        return list;
    }

    /// <summary>Loads the first candidate that opens, or says which were tried and how to get one.</summary>
    public static MpiLibrary Load(MpiLaunch? launch, Func<string, string?>? env = null)
    {
        env ??= Environment.GetEnvironmentVariable;
        var tried = new List<string>();
        foreach (var name in Candidates(launch, env))
        {
            if (!NativeLibrary.TryLoad(name, out var h)) { tried.Add(name); continue; }
            return new MpiLibrary(name, h);
        }
        string who = launch is { } l ? $"started by {l.Launcher} as rank {l.Rank} of {l.Size}, but " : "";
        throw new MpiException($"{who}no MPI library could be loaded (tried {string.Join(", ", tried)}): install Debian's openmpi-bin (apt-get install openmpi-bin) or mpich, or set DUET_MPI_LIBRARY to the path of libmpi");
    }

    public string Describe(int code)
    {
        var buf = new byte[1024];
        int len = 0;
        fixed (byte* b = buf)
            if (ErrorString(code, b, &len) != 0) return $"MPI error {code}";
        return System.Text.Encoding.UTF8.GetString(buf, 0, Math.Clamp(len, 0, buf.Length)).TrimEnd('\0');
    }
}

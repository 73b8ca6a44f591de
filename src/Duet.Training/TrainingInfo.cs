// Duet.Training: pretraining and fine-tuning of LLaMA-architecture models on the CPU (issue 5).
namespace Duet.Training;

internal static class TrainingInfo
{
    /// <summary>Version of the checkpoint and metrics formats this assembly writes.</summary>
    public const int FormatVersion = 1;
}

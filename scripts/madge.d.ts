// The part of madge's API (no published types) that check-cycles.ts uses.
declare module 'madge' {
  interface MadgeConfig {
    baseDir?: string;
    fileExtensions?: string[];
    tsConfig?: string;
    detectiveOptions?: Record<string, Record<string, unknown>>;
  }
  interface MadgeResult {
    obj(): Record<string, string[]>;
    circular(): string[][];
  }
  export default function madge(path: string | string[] | Record<string, string[]>, config?: MadgeConfig): Promise<MadgeResult>;
}
